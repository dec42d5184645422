"""Shared fixtures. Torch is slow with two threads on a busy 2-core machine, so tests pin one."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from lbdata.records import TeacherInfo, Usage  # noqa: E402
from lbdata.teachers.base import Teacher, TeacherResponse, TraceRequest  # noqa: E402


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An empty lbdata home, also exported as LBDATA_HOME."""
    h = tmp_path / "home"
    monkeypatch.setenv("LBDATA_HOME", str(h))
    return h


def png_bytes(color: str = "red", size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def jsonl_source(tmp_path) -> Path:
    """A small EasyR1-style jsonl file with images on disk and a few bad rows."""
    folder = tmp_path / "src"
    (folder / "img").mkdir(parents=True)
    for i, color in enumerate(["red", "green", "blue", "white"]):
        (folder / "img" / f"{i}.png").write_bytes(png_bytes(color, (30 + i, 20)))
    (folder / "img" / "broken.png").write_bytes(b"not an image")
    rows = [
        {"id": "a", "images": ["img/0.png"], "problem": "<image>What colour is it?", "answer": "red"},
        {"id": "b", "images": ["img/1.png"], "problem": "<image>Find x.", "answer": "\\boxed{7.5}"},
        {"id": "c", "images": ["img/2.png"], "problem": "<image>Count.", "answer": ""},
        {"id": "d", "images": ["img/missing.png"], "problem": "<image>Where?", "answer": "3"},
        {"id": "e", "images": ["img/broken.png"], "problem": "<image>Broken?", "answer": "4"},
        {"id": "b", "images": ["img/3.png"], "problem": "<image>Again b", "answer": "1"},
        {"id": "f", "images": ["img/3.png"], "problem": "<image>Which?", "answer": "B", "choices": ["1", "2"]},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "{this is not json")
    path = folder / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


class EchoTeacher(Teacher):
    """A test teacher: writes a well-formed trace that boxes the gold answer."""

    name = "echo"

    def __init__(self, fail_on: set[str] | None = None):
        self.calls: list[TraceRequest] = []
        self.fail_on = fail_on or set()

    @property
    def info(self) -> TeacherInfo:
        return TeacherInfo(backend="echo", model="echo-1", params={})

    def prompt_hash(self, variant: str, mode: str) -> str:
        return "echo0000"

    async def generate(self, request: TraceRequest) -> TeacherResponse:
        from lbdata.errors import RequestFailed

        self.calls.append(request)
        if request.problem.id in self.fail_on:
            raise RequestFailed("server_error: always fails")
        text = (
            f"<think> reading the figure for {request.problem.question} </think> "
            f"<back> the image shows it again </back> <think> so it is done </think> \\boxed{{{request.problem.answer}}}"
        )
        return TeacherResponse(text=text, usage=Usage(prompt_tokens=10, completion_tokens=20, requests=1))


@pytest.fixture()
def echo_teacher() -> EchoTeacher:
    return EchoTeacher()


# --- tiny model / serve (lbdata.train.tiny, lbdata.serve) ---


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL (seed 0), built once per test session."""
    from lbdata.train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_server(tiny_model_dir, tmp_path_factory):
    """`lbdata serve` on the tiny model in a subprocess on 127.0.0.1; yields ``(base_url, model_name)``."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    cmd = [sys.executable, "-m", "lbdata.cli", "serve", str(tiny_model_dir), "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"lbdata serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"lbdata serve not ready after 180 s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield base_url, str(tiny_model_dir.resolve())
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
