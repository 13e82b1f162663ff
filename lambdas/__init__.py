"""genai-stack runtime code: one package per Lambda function (handlers are thin, logic takes clients)."""
