"""The LLM nodes over HTTP against a real local chat-completions server (scripted answers:
good, malformed, short, slow, rate-limited, failing), and where the API key may not go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pysubs2
import pytest
import ray
import redis

from nodes import registry
from nodes.runner import Job, NodeRunner
from reuse.redis_store import ClaimRequest, RedisStageStore
from reuse.settings import Settings
from reuse.status import ReuseMode, StageStatus
from tests.chat_server import ChatServer, edit
from tests.conftest import LLM_KEY, make_settings, post_task, run_task, unique, wait_stage
from tests.loopback import LoopbackServer

LINES = ["hello there", "this is the second line", "and a third one", "four",
         "the fifth line\nhas two rows", "six", "seven is the last"]


@pytest.fixture(scope="module")
def srt_file(storage_root: Path) -> Path:
    subs = pysubs2.SSAFile()
    for i, text in enumerate(LINES):
        subs.append(pysubs2.SSAEvent(start=i * 1500, end=i * 1500 + 1200,
                                     text=text.replace("\n", r"\N")))
    path = storage_root / "inputs" / "lines.srt"
    path.parent.mkdir(parents=True, exist_ok=True)
    subs.save(str(path))
    return path


def test_correct_keeps_lines_and_times_and_batches_with_overlap(
        client: httpx.Client, chat_server: ChatServer, srt_file: Path) -> None:
    mark = len(chat_server.requests)
    out = run_task(client, unique("fix"), "wservice.correct_subtitles",
                   {"subtitle_path": str(srt_file), "batch_size": 3, "overlap_size": 2})
    requests = chat_server.since(mark)
    before = pysubs2.load(str(srt_file))
    after = pysubs2.load(out["corrected_subtitle_path"])
    assert [(e.start, e.end) for e in after] == [(e.start, e.end) for e in before]
    assert [e.plaintext for e in after] == [edit(t) for t in LINES]
    assert out["provider_used"] == "scripted" and out["model_used"] == "editor"
    assert out["statistics"] == {"lines": 7, "changed_lines": 7, "batches": 3, "requests": 3,
                                 "format_retries": 0, "prompt_tokens": 70,
                                 "completion_tokens": 35}
    sent = [json.loads(r["body"]["messages"][1]["content"]) for r in requests]
    assert [[line["id"] for line in s["lines"]] for s in sent] == [[0, 1, 2], [3, 4, 5], [6]]
    # each batch sees the two lines before it, as already corrected
    assert sent[1]["context"] == [{"id": 1, "text": edit(LINES[1])},
                                  {"id": 2, "text": edit(LINES[2])}]
    assert all(r["headers"]["authorization"] == f"Bearer {LLM_KEY}" for r in requests)


@pytest.mark.parametrize("script", ["malformed-once", "rate-limited-once", "slow-once"])
def test_bad_answers_are_retried(client: httpx.Client, chat_server: ChatServer,
                                 srt_file: Path, script: str) -> None:
    mark = len(chat_server.requests)
    out = run_task(client, unique("retry"), "wservice.correct_subtitles",
                   {"subtitle_path": str(srt_file), "model": script, "batch_size": 10})
    assert [e.plaintext for e in pysubs2.load(out["corrected_subtitle_path"])] == \
        [edit(t) for t in LINES]
    assert [r["body"]["model"] for r in chat_server.since(mark)] == [script, script]
    # a malformed answer is asked again by the node; 429 and timeouts by the client
    assert out["statistics"]["format_retries"] == (1 if script == "malformed-once" else 0)


@pytest.mark.parametrize(("script", "message"), [
    ("wrong-count", "broke the expected format 3 times"),
    ("broken", "answered HTTP 500"),
])
def test_answers_that_stay_bad_fail_the_stage(client: httpx.Client, srt_file: Path,
                                              script: str, message: str) -> None:
    task_id = unique("bad")
    r = post_task(client, task_id, "wservice.correct_subtitles",
                  {"subtitle_path": str(srt_file), "model": script})
    assert r.status_code == 202
    stage = wait_stage(client, task_id, "wservice.correct_subtitles")
    assert stage["status"] == "FAILED" and message in stage["error"], stage["error"]


@pytest.mark.parametrize(("data", "message"), [
    ({"provider": "deepseek"}, "'deepseek' is not configured"),
    ({"model": "gpt-4o"}, "'gpt-4o' is not offered here"),  # the operator's key pays
])
def test_another_provider_or_model_is_refused(client: httpx.Client, chat_server: ChatServer,
                                              srt_file: Path, data: dict[str, Any],
                                              message: str) -> None:
    task_id = unique("prov")
    mark = len(chat_server.requests)
    post_task(client, task_id, "wservice.correct_subtitles",
              {"subtitle_path": str(srt_file), **data})
    stage = wait_stage(client, task_id, "wservice.correct_subtitles")
    assert stage["status"] == "FAILED" and message in stage["error"]
    assert chat_server.since(mark) == []  # nothing was sent


def test_context_longer_than_the_batch_is_refused(client: httpx.Client, srt_file: Path) -> None:
    r = post_task(client, unique("ovl"), "wservice.correct_subtitles",
                  {"subtitle_path": str(srt_file), "batch_size": 1, "overlap_size": 50})
    assert r.status_code == 422 and "overlap_size" in r.text


def test_blank_lines_in_a_reply_cannot_add_cues(client: httpx.Client, chat_server: ChatServer,
                                                storage_root: Path) -> None:
    sneaky = storage_root / "inputs" / "sneaky.srt"
    sneaky.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n")
    out = run_task(client, unique("blank"), "wservice.correct_subtitles",
                   {"subtitle_path": str(sneaky), "model": "blank-lines"})
    text = Path(out["corrected_subtitle_path"]).read_text()
    assert text.count("-->") == 1 and "\n\n2\n" not in text  # still one cue
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,000\nHello.\n2\n")


def test_optimize_keeps_segments_and_times(client: httpx.Client, chat_server: ChatServer,
                                           storage_root: Path) -> None:
    segments = [{"start": i * 2.0, "end": i * 2.0 + 1.5, "text": f"um segment number {i}",
                 "words": [{"word": " um", "start": i * 2.0, "end": i * 2.0 + 0.3}]}
                for i in range(12)]
    path = storage_root / "inputs" / "raw_segments.json"
    path.write_text(json.dumps({"metadata": {"language": "en"}, "segments": segments}))
    mark = len(chat_server.requests)
    out = run_task(client, unique("opt"), "wservice.ai_optimize_subtitles",
                   {"segments_file": str(path), "batch_size": 5, "overlap_size": 2})
    assert out["subtitles_count"] == 12 and out["batches_count"] == 3
    data = json.loads(Path(out["optimized_file_path"]).read_text())
    assert [(s["start"], s["end"]) for s in data["segments"]] == \
        [(s["start"], s["end"]) for s in segments]
    assert [s["text"] for s in data["segments"]] == [edit(s["text"]) for s in segments]
    assert [s["original_text"] for s in data["segments"]] == [s["text"] for s in segments]
    assert data["metadata"]["language"] == "en" and out["original_file_path"] == str(path)
    assert len(chat_server.since(mark)) == 3


def test_the_key_is_nowhere_but_the_request_header(
        client: httpx.Client, loopback: LoopbackServer, srt_file: Path,
        settings: Settings, storage_root: Path) -> None:
    task_id = unique("key")
    hook = loopback.url("/cb/llm-key")
    r = client.post("/v1/tasks", json={"task_name": "wservice.correct_subtitles",
                                       "task_id": task_id, "callback": hook,
                                       "input_data": {"subtitle_path": str(srt_file)}})
    assert r.status_code == 202, r.text
    out = wait_stage(client, task_id, "wservice.correct_subtitles")
    assert out["status"] == "SUCCESS"
    calls = loopback.wait_for("/cb/llm-key")
    failed = unique("keyfail")
    post_task(client, failed, "wservice.correct_subtitles",
              {"subtitle_path": str(srt_file), "model": "broken"})
    wait_stage(client, failed, "wservice.correct_subtitles")
    seen = [client.get(f"/v1/tasks/{t}/status").text for t in (task_id, failed)]
    seen += [c.body.decode() for c in calls] + [json.dumps(out)]
    r = redis.Redis.from_url(settings.redis_url)
    seen += [repr(r.dump(k)) for k in r.scan_iter(count=1000)]
    seen += [p.read_text(errors="replace") for p in storage_root.rglob("*")
             if p.is_file() and p.stat().st_size < 10**7 and "jobs" in p.parts]
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())  # the replicas' logs
    seen += [p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()]
    assert len(seen) > 10
    assert not [text for text in seen if LLM_KEY in text]


async def test_without_a_provider_the_node_fails_clearly(redis_url: str,
                                                         tmp_path: Path) -> None:
    settings = make_settings(redis_url, tmp_path)  # no REELSERVE_LLM_BASE_URL
    store = RedisStageStore(settings)
    spec = registry.BY_NAME["wservice.correct_subtitles"]
    sub = tmp_path / "a.srt"
    sub.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    params = {"subtitle_path": str(sub)}
    claimed = await store.claim(ClaimRequest(
        task_id="noprov", task_name=spec.name, reuse_keys=list(spec.reuse_keys),
        mode=ReuseMode.AUTO, input_params=params, fingerprint="fp", request_params={}))
    job = Job(task_id="noprov", task_name=spec.name, attempt=claimed.stage.attempt,
              input_params=params)
    assert await NodeRunner(spec, settings, store).run(job) is StageStatus.FAILED
    stage = await store.read_stage("noprov", spec.name)
    assert stage is not None and "no LLM provider is configured" in (stage.error or "")
    await store.close()


def test_cleaned_text_flows_into_the_subtitles(client: httpx.Client,
                                               storage_root: Path) -> None:
    """ai_optimize -> merge_speaker_segments -> generate_subtitle_files on one task: the
    subtitles carry the LLM's text (the newcomer's walk-through lost it)."""
    path = storage_root / "inputs" / "raw_for_subs.json"
    path.write_text(json.dumps({"segments": [
        {"start": 0.0, "end": 1.5, "text": "hello there"},
        {"start": 2.0, "end": 3.5, "text": "how are you"}]}))
    task_id = unique("clean")
    run_task(client, task_id, "wservice.ai_optimize_subtitles", {"segments_file": str(path)})
    merged = run_task(client, task_id, "wservice.merge_speaker_segments",
                      {"speaker_segments_data": [{"start": 0, "end": 4, "speaker": "A"}]})
    assert merged["input_summary"]["segments_source"] == "wservice.ai_optimize_subtitles"
    subs = run_task(client, task_id, "wservice.generate_subtitle_files", {})
    assert [e.plaintext for e in pysubs2.load(subs["subtitle_path"])] == \
        ["Hello there.", "How are you."]
