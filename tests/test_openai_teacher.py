"""OpenAITeacher against the local fake server: what it sends, and how it classifies what goes wrong."""

import asyncio
import base64
import dataclasses
import io

import pytest
from PIL import Image

from lbdata.errors import RequestFailed, TeacherError, UsageError
from lbdata.images import fit_pixels
from lbdata.records import Problem
from lbdata.sources.base import encode_png, image_ref
from lbdata.teachers import load_teacher
from lbdata.teachers.base import TraceRequest, TransientError
from lbdata.teachers.openai import OpenAITeacher
from tests.fake_openai_server import FakeOpenAI, Fault

KEY = "sk-test-4f9c2b7e1d"


@pytest.fixture()
def server():
    with FakeOpenAI(api_key=KEY, hang_s=3.0) as srv:
        yield srv


def _request(size=(300, 200), **kw) -> TraceRequest:
    data = encode_png(Image.new("RGB", size, "red"))
    problem = Problem(id="t:1", images=[image_ref(data)], question="What is 3+4?", answer="7", source="t",
                      choices=kw.pop("choices", None))
    return TraceRequest(problem=problem, images=[data], variant=kw.pop("variant", "semantic_back"), seed=5, **kw)


def _teacher(server, **kw) -> OpenAITeacher:
    kw.setdefault("api_key", KEY)
    return OpenAITeacher("fake-teacher", base_url=server.url, timeout=kw.pop("timeout", 1.0), **kw)


def _send(teacher: OpenAITeacher, request: TraceRequest):
    async def go():
        try:
            return await teacher.generate(request)
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def test_images_arrive_as_data_urls_in_the_shared_pixel_band(server):
    teacher = _teacher(server, detail="high", min_pixels=256 * 256, max_pixels=512 * 512)
    response = _send(teacher, _request(size=(1000, 700), reveal_answer=True))
    assert response.text.startswith("<think>") and response.text.endswith("\\boxed{7}")
    (entry,) = server.log
    (image,) = entry.images
    assert image["prefix"] == "data:image/png;base64" and image["detail"] == "high"
    assert (image["width"], image["height"]) == fit_pixels(1000, 700, 256 * 256, 512 * 512)
    assert entry.seed == 5 and entry.max_tokens == 4096
    assert "What is 3+4?" in entry.text and "Reference answer" in entry.text


def test_image_inside_the_band_is_sent_as_is(server):
    request = _request(size=(308, 196))  # multiples of 28: nothing to resize
    messages = _teacher(server).messages(request)
    url = messages[0]["content"][0]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == request.images[0]
    assert messages[0]["content"][-1]["type"] == "text"
    with Image.open(io.BytesIO(request.images[0])) as im:
        assert im.size == (308, 196)


def test_answer_is_hidden_unless_revealed(server):
    teacher = _teacher(server)
    assert "Reference answer" not in teacher.render_text(_request())
    assert "Reference answer" in teacher.render_text(_request(reveal_answer=True))
    text = teacher.render_text(_request(choices=["3", "7"]))
    assert "A. 3" in text and "B. 7" in text and "option letter" in text


def test_every_variant_and_mode_has_a_template_with_the_model_instruction(server):
    from lbdata.prompts import format_instruction

    teacher = _teacher(server)
    for variant in ("semantic_back", "solution_back", "plain"):
        assert format_instruction(variant) in teacher.render_text(_request(variant=variant))
    for variant in ("semantic_back", "solution_back"):
        text = teacher.render_text(_request(variant=variant, mode="insert", base_trace="<think> x </think> \\boxed{7}"))
        assert "[BEGIN BASE TRACE]\n<think> x </think> \\boxed{7}\n[END BASE TRACE]" in text
    with pytest.raises(UsageError, match="back variant"):
        teacher.render_text(_request(variant="plain", mode="insert", base_trace="x"))
    with pytest.raises(RequestFailed, match="no_base_trace"):
        teacher.render_text(_request(mode="insert"))
    assert teacher.prompt_hash("semantic_back", "write") != teacher.prompt_hash("solution_back", "write")


def test_request_key_follows_what_is_sent(server):
    teacher = _teacher(server)
    base = teacher.request_key(_request())
    assert base == _teacher(server).request_key(_request())
    assert base != teacher.request_key(_request(reveal_answer=True))
    assert base != teacher.request_key(_request(max_tokens=8192))
    assert base != teacher.request_key(_request(size=(301, 200)))
    assert base != _teacher(server, temperature=0.2).request_key(_request())
    import dataclasses

    assert base != teacher.request_key(dataclasses.replace(_request(), seed=6))


def test_estimate_counts_images_as_sent(server):
    est = _teacher(server, detail="low", max_pixels=448 * 448).estimate(_request(size=(2000, 1000)))
    (w, h, detail), = est.images
    assert w * h <= 448 * 448 and detail == "low"
    assert est.max_completion_tokens == 4096 and est.text_tokens > 100


def test_key_stays_out_of_info_and_errors(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    teacher = _teacher(server)
    assert KEY not in repr(teacher.info.model_dump()) and "base_url" not in teacher.info.params
    with pytest.raises(TeacherError, match="OPENAI_API_KEY"):
        OpenAITeacher("gpt-4o")
    assert OpenAITeacher("m", base_url=server.url).info.model == "m"  # self-hosted: key optional


def test_registry_builds_openai_teachers(server):
    t = load_teacher("gpt-4o", api_key=KEY)
    assert isinstance(t, OpenAITeacher) and t.model == "gpt-4o" and t.base_url is None
    t = load_teacher("openai:Qwen/Qwen2.5-VL-7B-Instruct", base_url=server.url + "/")
    assert t.model == "Qwen/Qwen2.5-VL-7B-Instruct" and t.base_url == server.url


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("rate_limit", "rate_limited"),
        ("server_error", "server_error"),
        ("empty", "empty_response"),
        ("malformed", "malformed_response"),
        ("no_choices", "empty_response"),
        ("timeout", "timeout"),
    ],
)
def test_transient_faults_raise_retryable_errors(server, kind, reason):
    server.set_faults([Fault(kind, retry_after=0.25)])
    with pytest.raises(TransientError) as info:
        _send(_teacher(server, timeout=0.5), _request())
    assert info.value.reason == reason
    if kind == "rate_limit":
        assert info.value.retry_after == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("unauthorized", "rejected the API key"),
        ("unknown_model", "unknown model 'fake-teacher'"),
        ("bad_request", "refused the request (400"),
        ("quota", "out of quota"),
    ],
)
def test_hopeless_faults_raise_teacher_errors(server, kind, needle):
    server.set_faults([Fault(kind)])
    with pytest.raises(TeacherError, match=needle.replace("(", r"\(")) as info:
        _send(_teacher(server), _request())
    assert KEY not in str(info.value)


def test_wrong_key_and_unknown_model_fail_fast(server):
    with pytest.raises(TeacherError, match="401"):
        _send(_teacher(server, api_key="sk-wrong"), _request())
    with pytest.raises(TeacherError, match="/models"):
        _send(OpenAITeacher("no-such-model", base_url=server.url, api_key=KEY), _request())


def test_prompt_too_long_fails_only_that_request(server):
    server.set_faults([Fault("context")])
    with pytest.raises(RequestFailed, match="context_too_long"):
        _send(_teacher(server), _request())


def test_truncated_answer_is_returned_with_its_reason(server):
    server.set_faults([Fault("length")])
    response = _send(_teacher(server), _request())
    assert response.finish_reason == "length" and response.usage.completion_tokens > 0


def test_reasoning_models_get_max_completion_tokens(server):
    t = OpenAITeacher("o4-mini", base_url=server.url, api_key=KEY)
    params = t._params(_request())
    assert "max_completion_tokens" in params and "temperature" not in params and "max_tokens" not in params


def test_big_images_are_prepared_off_the_event_loop(server, monkeypatch):
    import numpy as np

    from lbdata.teachers import openai as module

    threaded = []
    real = asyncio.to_thread

    async def to_thread(fn, *args):
        threaded.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(module.asyncio, "to_thread", to_thread)

    noise = np.random.default_rng(0).integers(0, 255, (700, 900, 3), dtype=np.uint8)
    data = encode_png(Image.fromarray(noise))
    assert len(data) > 256 * 1024
    problem = Problem(id="t:big", images=[image_ref(data)], question="What is 3+4?", answer="7", source="t")
    request = TraceRequest(problem=problem, images=[data], variant="semantic_back", seed=1)
    _send(_teacher(server, max_pixels=448 * 448), request)
    (image,) = server.log[0].images
    assert (image["width"], image["height"]) == fit_pixels(900, 700, 56 * 56, 448 * 448)
    assert threaded.count("chat_body") == 1
    _send(_teacher(server), _request())  # a small image stays on the loop
    assert threaded.count("chat_body") == 1


def test_shared_part_first_variant_task_last(server):
    """Every variant of a problem sends the same prefix (images, rules, question, reference answer); only the
    variant's task differs, and it comes last. --no-prefix-order puts the task first."""
    teacher = _teacher(server)
    semantic = teacher.render_text(_request(variant="semantic_back", reveal_answer=True))
    solution = teacher.render_text(_request(variant="solution_back", reveal_answer=True))
    common = next(i for i, (a, b) in enumerate(zip(semantic, solution, strict=False)) if a != b)
    shared = semantic[:common]
    assert "What is 3+4?" in shared and "Reference answer" in shared and len(shared) > 800
    from lbdata.prompts import format_instruction

    assert format_instruction("semantic_back") not in shared
    assert semantic.index("What is 3+4?") < semantic.index(format_instruction("semantic_back"))
    (message,) = teacher.messages(_request())
    assert [p["type"] for p in message["content"]] == ["image_url", "text"]  # the image opens the prompt
    unordered = _teacher(server, prefix_order=False)
    text = unordered.render_text(_request(variant="semantic_back"))
    assert text.index(format_instruction("semantic_back")) < text.index("What is 3+4?")
    assert unordered.info.params["prefix_order"] is False and "prefix_order" not in teacher.info.params


def test_cached_prompt_tokens_are_read_from_the_usage():
    with FakeOpenAI(provider_usage=True) as srv:
        teacher = OpenAITeacher("fake-teacher", base_url=srv.url, detail="high")
        big = _request(size=(1008, 756), reveal_answer=True)  # 765 image tokens: the prompt passes 1,024

        async def go():
            try:
                a = await teacher.generate(big)
                b = await teacher.generate(dataclasses.replace(big, variant="solution_back"))
                return a, b
            finally:
                await teacher.aclose()

        first, second = asyncio.run(go())
    assert first.usage.prompt_tokens >= 1024 and first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= 1024 and second.usage.cached_tokens % 128 == 0
    assert second.usage.cached_tokens < second.usage.prompt_tokens


def test_n_samples_come_back_as_choices(server):
    teacher = _teacher(server)
    response = _send(teacher, dataclasses.replace(_request(reveal_answer=True), n=3))
    assert len(response.choices) == 3 and all(t.endswith("\\boxed{7}") for t, _ in response.choices)
    assert len(server.log) == 1  # one request for the three


def test_a_lone_surrogate_in_an_answer_is_kept_as_a_replacement_character():
    """``"\\ud800"`` is valid JSON but not text: storing such an answer crashed generate, and every re-run
    paid for it again."""
    from lbdata.teachers.openai import _read_completion

    body = (b'{"choices":[{"message":{"content":"a \\ud800 b \\ud83d\\ude00 \\\\boxed{7}"},"finish_reason":"stop"}],'
            b'"usage":{"prompt_tokens":3,"completion_tokens":2}}')
    text, finish, usage, _ = _read_completion(body)
    assert text == "a \ufffd b \U0001f600 \\boxed{7}" and finish == "stop" and usage.completion_tokens == 2
    text.encode("utf-8")


def test_usage_counts_that_are_not_integers_are_a_malformed_answer():
    from lbdata.teachers.openai import _read_completion

    body = b'{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e400}}'
    with pytest.raises(TransientError) as info:
        _read_completion(body)
    assert info.value.reason == "malformed_response"


def test_a_lone_surrogate_in_a_server_error_can_be_stored(server):
    """The server's error text goes into the ledger's failure rows; SQLite refuses a lone surrogate."""
    import sqlite3

    message = _teacher(server)._scrub('{"error": "bad \ud800 input"}')
    sqlite3.connect(":memory:").execute("SELECT ?", (message,))


@pytest.mark.parametrize("url", [
    "htp:/user:sk-proj-Secret0123456789@127.0.0.1/v1",  # one slash: no URL, so nothing could mask the password
    "127.0.0.1:8000/v1",
    "ftp://127.0.0.1/v1",
    "http://user:sk-proj-Secret0123456789@127.0.0.1:99999/v1",
    "http://[::1/v1",
    "http:///v1",
])
def test_a_base_url_that_is_not_an_http_url_is_one_line_before_anything_is_written(url):
    with pytest.raises(UsageError, match="--base-url") as info:
        OpenAITeacher("m", base_url=url, api_key=KEY)
    assert "Secret0123456789" not in str(info.value)


def test_a_base_url_with_user_info_port_and_query_is_accepted():
    t = OpenAITeacher("m", base_url="https://u:p@gw.example.com:8443/v1?api-version=1", api_key=KEY)
    assert t.base_url == "https://u:p@gw.example.com:8443/v1?api-version=1"
