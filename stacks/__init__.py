"""genai-stack infrastructure: profiles, the stage that composes stacks, stacks and reusable constructs."""
