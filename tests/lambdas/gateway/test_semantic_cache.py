"""The semantic cache (lambdas/gateway/semantic_cache.py) through the gateway, against a real botocore
s3vectors client answered in-process (tests/support/s3vectors.py): paraphrases at or above the
alias's similarity hit, unrelated or less similar questions miss, another tenant's entry is never
served unless the alias is shared, and every store or embedding failure is a miss."""

from __future__ import annotations

import json

import pytest

from lambdas.gateway.config import Settings, build_gateway
from lambdas.gateway.errors import ProviderError
from lambdas.gateway.schema import ChatCompletionRequest
from lambdas.gateway.semantic_cache import (
    AliasPolicy,
    SemanticCache,
    question_of,
    scope_of,
    send_vectors_whole,
)
from lambdas.gateway.service import SEMANTIC_TARGET, SIMILARITY_HEADER, Gateway, Price
from tests.lambdas.gateway.fakes import FakeClock, RecordingMetrics, ScriptedChat, WordEmbeddings, answer
from tests.support.s3vectors import S3VectorsFake

INDEX = "arn:aws:s3vectors:us-east-1:123456789012:bucket/genai/index/semantic-cache"
EMBEDDER = "bedrock:amazon.titan-embed-text-v2:0"
QUESTION = "What is your refund policy?"
PARAPHRASE = "Please tell me your refunds policy"  # the same content words: similarity 1
NEAR = "What is your refund policy for shoes?"  # two of three words: similarity 0.816
UNRELATED = "How long does shipping to Hong Kong take?"


def build(
    *,
    min_similarity: float = 0.8,
    shared: bool = False,
    store: S3VectorsFake | None = None,
    embedder: WordEmbeddings | None = None,
    guardrail: tuple[str, str] | None = None,
    clock: FakeClock | None = None,
) -> tuple[Gateway, ScriptedChat, S3VectorsFake]:
    store = store or S3VectorsFake()
    model = ScriptedChat("bedrock:amazon.nova-lite-v1:0", answer("Refunds within 30 days."))
    gw = Gateway(
        chat_routes={"drafts": [model], "other": [ScriptedChat("bedrock:other", answer("other"))]},
        embedding_routes={},
        prices={"bedrock:amazon.nova-lite-v1:0": Price(0.06, 0.24), EMBEDDER: Price(0.02, 0.0)},
        guardrail=guardrail,
        semantic=SemanticCache(
            store.client(),
            embedder or WordEmbeddings(),
            embedding_alias="embedder",
            index_arn=INDEX,
            dimensions=256,
            ttl_seconds=3600,
            aliases={"drafts": AliasPolicy(min_similarity, shared)},
            price_per_1k=0.02,
            clock=clock or FakeClock(now=1_800_000_000.0),
        ),
    )
    return gw, model, store


def ask(gw: Gateway, question: str, *, tenant: str = "tw", metrics=None, **extra):
    body = {"model": "drafts", "temperature": 0, "messages": [{"role": "user", "content": question}]}
    return gw.chat({**body, **extra}, tenant=tenant, metrics=metrics or RecordingMetrics())


def test_a_paraphrase_gets_the_stored_answer_without_a_model_call():
    gw, model, store = build()
    metrics = RecordingMetrics()
    first, headers = ask(gw, QUESTION, metrics=metrics)
    assert headers["x-genai-cache"] == "miss"
    again, headers = ask(gw, PARAPHRASE, metrics=metrics)
    assert model.calls == 1
    assert headers["x-genai-cache"] == "semantic-hit"
    assert headers["x-genai-target"] == SEMANTIC_TARGET
    assert float(headers[SIMILARITY_HEADER]) == pytest.approx(1.0)
    assert again["choices"] == first["choices"]
    assert again["id"] != first["id"]  # ratings follow the tenant that got each answer
    miss, hit = metrics.semantic
    assert (miss.hit, miss.errors, hit.hit) == (False, 0, True)
    # What the stored answer cost: 12 input and 3 output tokens at Nova Lite's prices.
    assert hit.saved_tokens == 15
    assert hit.saved_usd == pytest.approx((12 * 0.06 + 3 * 0.24) / 1000)
    # Each lookup's embedding is a request of the embedding alias, with its cost.
    lookups = [u for u, _ in metrics.records if u.target == EMBEDDER]
    assert [u.alias for u in lookups] == ["embedder", "embedder"]
    assert all(u.cost_usd == pytest.approx(u.input_tokens * 0.02 / 1000) for u in lookups)
    # The query the client sent: the alias's scope, unexpired entries only, the nearest one.
    query = next(body for op, body in store.calls if op == "QueryVectors")
    assert (query["topK"], query["returnMetadata"], query["returnDistance"]) == (1, True, True)
    # The vector went on the wire whole, under a signature that covers it (the store checks it).
    embedded = WordEmbeddings().embed([PARAPHRASE], dimensions=256, deadline=None).vectors[0]
    assert query["queryVector"]["float32"] == pytest.approx(embedded)
    put = next(body for op, body in store.calls if op == "PutVectors")
    assert len(put["vectors"][0]["data"]["float32"]) == 256
    scope, expiry = query["filter"]["$and"]
    assert (set(scope), expiry) == ({"scope"}, {"expires_at": {"$gt": 1_800_000_000}})


def test_a_question_less_similar_than_the_alias_asks_is_a_miss_with_its_similarity():
    gw, model, _ = build(min_similarity=0.9)
    metrics = RecordingMetrics()
    ask(gw, QUESTION)
    _, headers = ask(gw, NEAR, metrics=metrics)
    assert (model.calls, headers["x-genai-cache"]) == (2, "miss")
    assert metrics.semantic[0].similarity == pytest.approx(2 / 6**0.5)
    # ... which a lower threshold accepts
    gw, model, _ = build(min_similarity=0.8)
    ask(gw, QUESTION)
    assert ask(gw, NEAR)[1]["x-genai-cache"] == "semantic-hit"


def test_an_unrelated_question_is_a_miss():
    gw, model, _ = build(min_similarity=0.5)
    ask(gw, QUESTION)
    _, headers = ask(gw, UNRELATED)
    assert (model.calls, headers["x-genai-cache"]) == (2, "miss")


def test_another_tenant_never_gets_an_answer_unless_the_alias_is_shared():
    gw, model, _ = build()
    ask(gw, QUESTION, tenant="tw")
    _, headers = ask(gw, QUESTION, tenant="en")
    assert (model.calls, headers["x-genai-cache"]) == (2, "miss")
    assert ask(gw, PARAPHRASE, tenant="en")[1]["x-genai-cache"] == "semantic-hit"  # its own entry

    gw, model, _ = build(shared=True)
    ask(gw, QUESTION, tenant="tw")
    assert ask(gw, PARAPHRASE, tenant="en")[1]["x-genai-cache"] == "semantic-hit"
    assert model.calls == 1


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 50},
        {
            "messages": [
                {"role": "system", "content": "Answer in Chinese."},
                {"role": "user", "content": QUESTION},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": QUESTION},
            ]
        },
    ],
    ids=["parameter", "system prompt", "earlier turns"],
)
def test_the_question_s_context_must_be_the_same(change):
    gw, model, _ = build()
    ask(gw, QUESTION)
    _, headers = ask(gw, QUESTION, **change)
    assert (model.calls, headers["x-genai-cache"]) == (2, "miss")


def test_a_new_guardrail_version_does_not_serve_answers_checked_by_the_old_one():
    store = S3VectorsFake()
    gw, _, _ = build(store=store, guardrail=("gr-1", "1"))
    ask(gw, QUESTION)
    gw, model, _ = build(store=store, guardrail=("gr-1", "2"))
    assert ask(gw, QUESTION)[1]["x-genai-cache"] == "miss"
    assert model.calls == 1


def test_an_entry_past_its_ttl_is_a_miss():
    clock = FakeClock(now=1_800_000_000.0)
    gw, _, _ = build(clock=clock)
    ask(gw, QUESTION)
    clock.now += 3599
    assert ask(gw, QUESTION)[1]["x-genai-cache"] == "semantic-hit"
    clock.now += 2
    assert ask(gw, QUESTION)[1]["x-genai-cache"] == "miss"


def test_a_store_outage_is_a_miss_counted_and_logged(caplog):
    store = S3VectorsFake()
    gw, model, _ = build(store=store)
    ask(gw, QUESTION)
    store.outage = True
    metrics = RecordingMetrics()
    response, headers = ask(gw, QUESTION, metrics=metrics)
    assert response["choices"][0]["message"]["content"] == "Refunds within 30 days."
    assert (model.calls, headers["x-genai-cache"]) == (2, "miss")
    # the lookup and the write both failed
    assert [(p.hit, p.errors) for p in metrics.semantic] == [(False, 2)]
    logged = [r.__dict__ for r in caplog.records if r.getMessage() == "semantic cache miss on a failure"]
    assert [(e["step"], e["error"].split(":")[0]) for e in logged] == [
        ("the query", "ServiceUnavailableException"),
        ("the write", "ServiceUnavailableException"),
    ]
    assert all(QUESTION not in str(e) for e in logged)  # never the question


def test_an_embedding_failure_is_a_miss_and_nothing_is_stored():
    embedder = WordEmbeddings(failure=ProviderError("throttled", retryable=True, throttled=True))
    gw, model, store = build(embedder=embedder)
    metrics = RecordingMetrics()
    _, headers = ask(gw, QUESTION, metrics=metrics)
    assert (model.calls, headers["x-genai-cache"]) == (1, "miss")
    assert [(p.hit, p.errors) for p in metrics.semantic] == [(False, 1)]
    assert not [op for op, _ in store.calls]


def test_an_entry_that_does_not_hold_an_answer_is_a_miss():
    gw, _, store = build()
    ask(gw, QUESTION)
    (entry,) = store.indexes[INDEX].values()
    entry[1]["entry"] = json.dumps({"response": "not an answer"})
    metrics = RecordingMetrics()
    assert ask(gw, QUESTION, metrics=metrics)[1]["x-genai-cache"] == "miss"
    assert metrics.semantic[0].errors == 1


def test_only_deterministic_or_opted_in_requests_use_it():
    gw, model, store = build()
    ask(gw, QUESTION, temperature=0.7)
    ask(gw, QUESTION, temperature=0.7)
    assert (model.calls, store.calls) == (2, [])
    ask(gw, QUESTION, temperature=0.7, cache=True)
    assert ask(gw, PARAPHRASE, temperature=0.7, cache=True)[1]["x-genai-cache"] == "semantic-hit"


def test_aliases_without_it_and_tool_results_are_left_alone():
    gw, _, store = build()
    gw.chat(
        {"model": "other", "temperature": 0, "messages": [{"role": "user", "content": QUESTION}]},
        tenant="tw",
        metrics=RecordingMetrics(),
    )
    assert not store.calls
    tool_turn = ChatCompletionRequest.model_validate(
        {
            "model": "drafts",
            "messages": [
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                 "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
        }
    )  # fmt: skip
    assert question_of(tool_turn) is None


def test_an_answer_the_guardrail_stopped_is_not_stored():
    gw, model, store = build()
    model.script = [answer("Sorry, I can't.", intervened=True)]
    ask(gw, QUESTION)
    assert not [op for op, _ in store.calls if op == "PutVectors"]


def test_a_streamed_request_gets_the_stored_answer_as_one_chunk():
    gw, model, _ = build()
    ask(gw, QUESTION)
    body = {
        "model": "drafts",
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": PARAPHRASE}],
    }
    chunks, headers = gw.chat_stream(body, tenant="tw", metrics=RecordingMetrics())
    assert b"Refunds within 30 days." in b"".join(chunks)
    assert (headers["x-genai-cache"], model.calls) == ("semantic-hit", 1)


def test_the_scope_is_the_question_s_whole_context():
    def request(**extra):
        base = {"model": "drafts", "temperature": 0, "messages": [{"role": "user", "content": QUESTION}]}
        return ChatCompletionRequest.model_validate({**base, **extra})

    same = scope_of(request(), tenant="tw", guardrail_version="1", shared=False)
    assert scope_of(request(user="someone"), tenant="tw", guardrail_version="1", shared=False) == same
    assert (
        scope_of(
            request(messages=[{"role": "user", "content": UNRELATED}]),
            tenant="tw",
            guardrail_version="1",
            shared=False,
        )
        == same
    )  # the question itself is the vector's part, not the scope's
    for other in (
        scope_of(request(), tenant="en", guardrail_version="1", shared=False),
        scope_of(request(), tenant="tw", guardrail_version="2", shared=False),
        scope_of(request(top_p=0.5), tenant="tw", guardrail_version="1", shared=False),
    ):
        assert other != same
    assert scope_of(request(), tenant="tw", guardrail_version="1", shared=True) == scope_of(
        request(), tenant="en", guardrail_version="1", shared=True
    )


def test_whitespace_and_full_width_forms_do_not_change_the_question():
    def q(text):
        return question_of(
            ChatCompletionRequest.model_validate(
                {"model": "m", "messages": [{"role": "user", "content": text}]}
            )
        )

    full_width_question_mark = "\uff1f"
    assert q(f"  退款 政策{full_width_question_mark} ") == q("退款\u3000政策?") == "退款 政策?"


def test_the_configuration_builds_it_from_the_embedding_alias():
    settings = Settings.model_validate(
        {
            "chat": {"drafts": [{"kind": "bedrock", "model": "amazon.nova-lite-v1:0"}]},
            "embeddings": {"embedder": {"kind": "bedrock", "model": "amazon.titan-embed-text-v2:0"}},
            "prices": {EMBEDDER: [0.00002, 0.0]},
            "semantic_cache": {
                "index_arn": INDEX,
                "embedding": "embedder",
                "dimensions": 512,
                "ttl_seconds": 86400,
                "aliases": {"drafts": {"min_similarity": 0.95, "shared": True}},
            },
        }
    )
    gw = build_gateway(settings, lambda service: object())
    assert gw.semantic.embedder is gw.embedding_routes["embedder"]
    assert (gw.semantic.dimensions, gw.semantic.price_per_1k) == (512, 0.00002)
    assert gw.semantic.aliases == {"drafts": AliasPolicy(0.95, True)}
    with pytest.raises(ValueError, match="not an embedding alias"):
        Settings.model_validate(
            {
                **settings.model_dump(),
                "semantic_cache": {**settings.semantic_cache.model_dump(), "embedding": "x"},
            }
        )
    with pytest.raises(ValueError, match="not chat aliases"):
        Settings.model_validate(
            {
                **settings.model_dump(),
                "semantic_cache": {
                    **settings.semantic_cache.model_dump(),
                    "aliases": {"nope": {"min_similarity": 0.9}},
                },
            }
        )


def test_the_store_refuses_a_body_changed_after_signing():
    """The fake checks SigV4 as AWS does: the fast path must write the vectors before the signature."""
    from botocore.exceptions import ClientError

    store = S3VectorsFake()
    client = send_vectors_whole(store.client())

    def tamper(request, **_):
        request.body = request.body.replace(b"0.5", b"0.25")

    client.meta.events.register_first("before-send.s3vectors", tamper)
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        client.query_vectors(indexArn=INDEX, topK=1, queryVector={"float32": [0.5, 0.5]})
    assert (
        send_vectors_whole(store.client()).query_vectors(
            indexArn=INDEX, topK=1, queryVector={"float32": [0.5, 0.5]}
        )["vectors"]
        == []
    )
    assert store.calls[-1][1]["queryVector"] == {"float32": [0.5, 0.5]}


def test_the_vectors_are_put_back_whatever_the_serializer_s_spacing():
    from botocore.awsrequest import AWSRequest

    from lambdas.gateway.semantic_cache import Vector, _put_back

    for body in (
        b'{"topK":1,"queryVector":{"float32":[0.0]}}',
        b'{"topK": 1, "queryVector": {"float32": [0.0]}}',
    ):
        request = AWSRequest(method="POST", url="https://s3vectors.us-east-1.api.aws/QueryVectors", data=body)
        request.context["genai_stack_vectors"] = [Vector((0.5, -0.25))]
        _put_back(request)
        assert json.loads(request.data) == {"topK": 1, "queryVector": {"float32": [0.5, -0.25]}}


def test_the_tenant_s_allowance_counts_the_lookup_and_nothing_else_on_a_hit():
    """A miss is settled at the model's answer plus the lookup's embedding; a hit at the embedding only."""
    from lambdas.gateway.allowance import Admission

    class Ledger:
        def __init__(self):
            self.settled: list[tuple[float, int]] = []

        def admit(self, tenant, *, usd, tokens, deadline=None):
            return Admission(f"{tenant}#2026-12")

        def settle(self, admission, *, usd, tokens, deadline=None):
            self.settled.append((usd, tokens))

    gw, _, _ = build()
    gw.ledger = Ledger()
    ask(gw, QUESTION)
    ask(gw, PARAPHRASE)
    embedding = WordEmbeddings().embed([QUESTION], dimensions=256, deadline=None).input_tokens
    (miss_usd, miss_tokens), (hit_usd, hit_tokens) = gw.ledger.settled
    assert miss_tokens == 12 + 3 + embedding
    assert miss_usd == pytest.approx((12 * 0.06 + 3 * 0.24 + embedding * 0.02) / 1000)
    paraphrase = WordEmbeddings().embed([PARAPHRASE], dimensions=256, deadline=None).input_tokens
    assert (hit_usd, hit_tokens) == (pytest.approx(paraphrase * 0.02 / 1000), paraphrase)


def test_the_scope_is_filtered_before_the_search_not_among_the_nearest():
    """The tenant's own entry is found even when another tenant's is nearer: on an index that filters
    during the search (CLASSIC), topK 1 would return the other tenant's, filter it out and miss."""
    gw, model, store = build()
    assert store.index_mode == "CLASSIC"
    ask(gw, QUESTION, tenant="tw")  # nearest to the question asked below: similarity 1
    ask(gw, NEAR, tenant="en")  # en's own: similarity 0.816
    _, headers = ask(gw, QUESTION, tenant="en")
    assert headers["x-genai-cache"] == "semantic-hit"
    assert float(headers[SIMILARITY_HEADER]) == pytest.approx(2 / 6**0.5, abs=1e-4)
    assert model.calls == 2


class Screen:
    """A guardrail whose check intervenes on prompts containing `refuse`, or raises `failure`."""

    def __init__(self, failure: Exception | None = None, refuse: str | None = None):
        self.failure = failure
        self.refuse = refuse
        self.checked: list[tuple[str, str]] = []

    def check(self, source, text, deadline=None):
        self.checked.append((source, text))
        if self.failure is not None:
            raise self.failure
        return "Sorry, I can't help with that." if self.refuse and self.refuse in text else None


@pytest.mark.parametrize(
    ("screen", "question", "outcome", "errors"),
    [
        (Screen(refuse="Please"), PARAPHRASE, "miss", 0),  # only the paraphrase has "Please"
        (
            Screen(ProviderError("guardrail: throttled", retryable=True, throttled=True)),
            PARAPHRASE,
            "miss",
            1,
        ),
        (Screen(), PARAPHRASE, "semantic-hit", 0),
    ],
    ids=["intervenes", "fails", "passes"],
)
def test_with_a_guardrail_a_stored_answer_goes_only_to_a_prompt_it_lets_through(
    screen, question, outcome, errors
):
    gw, model, _ = build(guardrail=("gr-1", "1"))
    gw.semantic.guardrail = screen
    ask(gw, QUESTION)
    assert screen.checked == []  # a miss is guarded by the model call itself
    metrics = RecordingMetrics()
    _, headers = ask(gw, question, metrics=metrics)
    assert headers["x-genai-cache"] == outcome
    assert screen.checked == [("INPUT", question)]
    assert model.calls == (1 if outcome == "semantic-hit" else 2)
    assert metrics.semantic[0].errors == errors


def test_a_retried_call_sends_the_whole_vector_again():
    """The fast path keeps the vectors in the call's context: an SDK retry, which rebuilds the body
    from the placeholder, gets them written in and signed again."""
    import boto3
    from botocore.config import Config

    store = S3VectorsFake()
    client = boto3.client(
        "s3vectors",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}),
    )
    client.meta.events.register("before-send.s3vectors", store._answer)
    send_vectors_whole(client)
    store.fail_next = 1
    client.put_vectors(
        indexArn=INDEX, vectors=[{"key": "k", "data": {"float32": [0.5, 0.25]}, "metadata": {"scope": "s"}}]
    )
    sent = [body["vectors"][0]["data"]["float32"] for op, body in store.calls if op == "PutVectors"]
    assert sent == [[0.5, 0.25], [0.5, 0.25]]
