"""LangChain's OpenAI integration (langchain-openai) against the locally served gateway, configured
as an application team would: only a base URL and a key (the local server checks keys as the
deployed API does)."""

from __future__ import annotations

import importlib
import json

import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from lambdas.gateway.local import serve
from lambdas.gateway.service import Gateway
from lambdas.gateway_authorizer.keys import FileKeyStore
from tests.lambdas.gateway.fakes import FixedEmbeddings, ScriptedChat, answer


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory):
    import os

    previous = os.environ.get("GATEWAY_CONFIG")
    os.environ["GATEWAY_CONFIG"] = json.dumps({"chat": {"copywriter": [{"kind": "bedrock", "model": "m"}]}})
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    chat = ScriptedChat("bedrock:m", *[answer("Spring savings, all season.")] * 5)
    module.gateway = lambda: Gateway(
        chat_routes={"copywriter": [chat]}, embedding_routes={"embedder": FixedEmbeddings()}
    )
    store = FileKeyStore(tmp_path_factory.mktemp("keys") / "keys.json")
    key = store.add("langchain")
    server = serve(module.on_event, keys=store)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", key, chat
    server.shutdown()
    if previous is None:
        os.environ.pop("GATEWAY_CONFIG", None)
    else:
        os.environ["GATEWAY_CONFIG"] = previous


def test_chat_openai_invokes_with_only_a_base_url_and_a_key(gateway_url):
    url, key, chat = gateway_url
    model = ChatOpenAI(base_url=url, api_key=key, model="copywriter", max_retries=0, temperature=0.2)
    reply = model.invoke("A slogan for a spring sale")
    assert reply.content == "Spring savings, all season."
    assert reply.usage_metadata["total_tokens"] > 0
    assert chat.requests[-1].temperature == 0.2  # what LangChain sent reached the model


def test_chat_openai_with_a_wrong_key_raises_the_openai_authentication_error(gateway_url):
    import openai

    url, _, _ = gateway_url
    model = ChatOpenAI(base_url=url, api_key="gsk" + "x" * 45, model="copywriter", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        model.invoke("Hi")


def test_openai_embeddings_embed_text_when_told_not_to_tokenize(gateway_url):
    url, key, _ = gateway_url
    # LangChain tokenizes with tiktoken by default (token ids, refused with what to do instead).
    embeddings = OpenAIEmbeddings(
        base_url=url, api_key=key, model="embedder", check_embedding_ctx_length=False, max_retries=0
    )
    vectors = embeddings.embed_documents(["one", "two"])
    assert len(vectors) == 2
    assert all(isinstance(x, float) for x in vectors[0])
