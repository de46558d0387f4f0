"""The ingress deployment: validates, makes the reuse decision, answers.

A hit is answered from one Redis read, without a hop to another deployment (unless it has
a callback to queue). Misses and waits go to the StageStore, which re-decides under its
per-task lock and claims atomically; a won claim is handed to the node's deployment by a
task of its own (`_hand_off`), which lasts the run: no request waits for a node run.
"""


import asyncio
import contextvars
import logging
import time
from typing import Annotated, Any

from fastapi import FastAPI, Path, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from graph import errors, files, limits
from graph.errors import responses, status_of
from graph.hand_off import awaited, see_through
from graph.metrics import ingress_metrics
from graph.schemas import TASK_ID_PATTERN, TaskRequest, TaskResponse
from nodes import registry
from nodes.inputs import check_file_params, resolve_upstream
from nodes.runner import Job
from nodes.spec import NodeSpec
from reuse import reuse_info
from reuse.addresses import check_target, redact
from reuse.artifacts import artifact_store
from reuse.decide import Action, decide
from reuse.errors import AddressRefused, Conflict, InputError, NotFound, ReelserveError, brief
from reuse.models import Stage, WorkflowContext, fingerprint
from reuse.redis_store import ClaimRequest, Fenced, RedisStageStore
from reuse.settings import Settings
from reuse.storage import artifacts_exist

log = logging.getLogger("reelserve.ingress")
api = FastAPI(
    title="reelserve",
    version="0.1.0",
    description="Single-task API over media nodes, with stage reuse per task_id.",
)
errors.install(api)
api.add_middleware(limits.RequestGuard)  # API key and body size, before a body is read


# Serve serializes this class by value when it is decorated, with only the globals its
# code names that exist at that point. So: helpers stand above the class, and this module
# has no `from __future__ import annotations` (FastAPI must see real annotation objects).
def describe(spec: NodeSpec) -> dict[str, Any]:
    return {
        "task_name": spec.name, "family": spec.family, "summary": spec.summary,
        "reuse_keys": list(spec.reuse_keys), "outputs": list(spec.outputs),
        "required": list(spec.required),
        "upstream": {p: [f"{t}.{k}" for t, k in s] for p, s in spec.upstream.items()},
        "params_schema": spec.params.model_json_schema(),
        "resources": {"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus},
    }


TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="The job.")]

@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=1000)
@serve.ingress(api)
class Ingress:
    def __init__(
        self,
        settings: Settings,
        store: DeploymentHandle,
        sender: DeploymentHandle,
        nodes: dict[str, DeploymentHandle],
    ) -> None:
        self.settings = settings
        limits.configure(settings)
        self.reader = RedisStageStore(settings)  # plain reads only; writes go to `store`
        self.store = store
        self.sender = sender
        self.nodes = nodes
        self.specs = [spec for spec in registry.NODES if spec.name in nodes]
        self.hand_offs: set[asyncio.Task[None]] = set()
        self.metrics = ingress_metrics()
        self.artifacts = artifact_store(settings)

    # ---- helpers -----------------------------------------------------------------------

    def _spec(self, task_name: str) -> NodeSpec:
        if task_name not in self.nodes:
            raise InputError(f"unknown task_name {brief(task_name)}",
                             {"supported_tasks": [s.name for s in self.specs]})
        spec = registry.get(task_name)
        assert spec is not None
        return spec

    def _prepare(
        self, spec: NodeSpec, params: dict[str, Any], context: WorkflowContext | None
    ) -> tuple[dict[str, Any], bool]:
        """Upstream sources and path checks. Returns (resolved params, artifacts exist).

        The checks are stat/realpath calls on the storage root, made inline: through a
        worker thread they cost ~0.5 ms of a ~2 ms hit on a 2-core box (bench/). With an S3
        artifact store they are requests to the bucket, so `_decide` runs this in a thread.
        File contents are never read here.
        """
        stages = context.stages if context else {}
        resolved = resolve_upstream(spec, params, stages)
        check_file_params(spec, resolved, self.settings)
        return resolved, artifacts_exist(stages.get(spec.name), spec.reuse_keys, self.artifacts)

    def _answer(
        self, status_code: int, body: TaskRequest, status: str, message: str,
        info: reuse_info.ReuseInfo, result: WorkflowContext | None = None,
    ) -> Response:
        resp = TaskResponse(
            task_id=body.task_id, task_name=body.task_name, status=status,
            message=message, reuse_info=reuse_info.to_dict(info), result=result,
        )
        # pydantic's own serializer, straight to bytes (no dict round trip through json)
        return Response(resp.model_dump_json(), status_code=status_code,
                        media_type="application/json")

    async def _hit(
        self, body: TaskRequest, stage: Stage, context: WorkflowContext | None
    ) -> Response:
        """Answer a hit. `context` is the job as read for the decision (None: read it now)."""
        self.metrics.request(body.task_name, "hit")
        if body.callback and context is not None:
            await self.store.enqueue_hit.remote(body.task_id, body.task_name, body.callback)
        if body.callback:
            self.sender.notify.remote()  # fire and forget: the outbox is durable anyway
        if context is None:
            context = await self.reader.read_context(body.task_id)
        return self._answer(200, body, "completed", "reused the stored result",
                            reuse_info.hit(body.task_name, stage), context)

    async def _hand_off(self, job: Job) -> None:
        """See the claimed attempt through at its node (graph/hand_off.py); the 202 does not
        wait for this. If the node cannot take it at all, it ends FAILED at once. If this
        replica dies, the lease runs out and the sweep starts the run again."""
        try:
            await see_through(job, self.nodes[job.task_name].submit.remote, self._renew,
                              self.settings.heartbeat_s)
        except Exception as exc:
            await self.store.finish.remote(job.task_id, job.task_name, job.attempt, None,
                                           f"hand-off to the node failed: {exc!r}"[:500])
            self.sender.notify.remote()

    async def _renew(self, task_id: str, task_name: str, attempt: int) -> Fenced:
        return await self.store.heartbeat.remote(task_id, task_name, attempt, None)

    # ---- the task API ------------------------------------------------------------------

    @api.post("/v1/tasks", response_model=TaskResponse, status_code=202,
              responses={200: {"model": TaskResponse}, **responses()})
    async def create_task(self, body: TaskRequest) -> Response:
        # The decision, claim and hand-off run in a task of their own, outside the request's
        # Serve context and shielded: a client that disconnects cancels this handler, but
        # not the claim or the hand-off to the node (which Serve would otherwise cancel too).
        work = asyncio.get_running_loop().create_task(
            self._submit(body), context=contextvars.Context())
        return await asyncio.shield(work)

    async def _submit(self, body: TaskRequest) -> Response:
        try:
            return await self._decide(body)
        except ReelserveError as exc:
            if status_of(exc) < 500:
                self.metrics.request(body.task_name, "refused", str(status_of(exc)))
            raise

    async def _decide(self, body: TaskRequest) -> Response:
        spec = self._spec(body.task_name)
        limits.check_strings(body.input_data, self.settings.max_string_chars)
        try:
            params = spec.params.model_validate(body.input_data).model_dump(mode="json")
        except ValidationError as exc:
            raise errors.from_validation(exc, "input_data.") from exc
        if body.callback:
            try:
                check_target(body.callback, self.settings.callback_allow_cidrs)
            except AddressRefused as exc:
                raise AddressRefused(f"callback: {exc}") from exc
        context = await self.reader.read_context(body.task_id)
        try:
            if self.artifacts.remote:
                resolved, present = await asyncio.to_thread(self._prepare, spec, params,
                                                            context)
            else:
                resolved, present = self._prepare(spec, params, context)
        except InputError as exc:
            raise type(exc)(f"input_data: {exc}", exc.detail) from exc
        fp = fingerprint(resolved)
        stage = context.stages.get(spec.name) if context else None
        decision = decide(stage, reuse_keys=spec.reuse_keys, mode=body.reuse,
                          now=time.time(), fingerprint=fp, artifacts_present=present)
        if decision.action is Action.HIT:
            assert stage is not None and context is not None
            return await self._hit(body, stage, context)

        claim = ClaimRequest(
            task_id=body.task_id, task_name=spec.name, reuse_keys=list(spec.reuse_keys),
            mode=body.reuse, input_params=resolved, fingerprint=fp,
            # the job shows the request with its callback URL redacted to the host: other
            # callers read /status, and the path of a callback URL is often a token
            request_params={"task_name": spec.name, "input_data": body.input_data,
                            "callback_url": redact(body.callback) if body.callback else None},
        )
        outcome = await self.store.claim.remote(claim, body.callback)
        stage, action = outcome.stage, outcome.decision.action
        if action is Action.HIT:
            return await self._hit(body, stage, None)  # the store queued its callback
        if action is Action.WAIT:
            self.metrics.request(spec.name, "pending")
            return self._answer(202, body, "pending", "the node is already running this task; "
                                "no second run", reuse_info.pending(spec.name, stage))
        job = Job(task_id=body.task_id, task_name=spec.name, attempt=stage.attempt,
                  input_params=resolved)
        hand_off = asyncio.get_running_loop().create_task(self._hand_off(job))
        self.hand_offs.add(hand_off)
        hand_off.add_done_callback(self.hand_offs.discard)
        reason = outcome.decision.reason
        assert reason is not None
        self.metrics.request(spec.name, "miss", reason.value)
        return self._answer(202, body, "pending", f"started ({reason.value})",
                            reuse_info.miss(spec.name, reason, stage.attempt))

    async def _context_or_404(self, task_id: str) -> Response:
        context = await self.reader.read_context(task_id)
        if context is None:
            raise NotFound(f"task {task_id!r} not found")
        return Response(context.model_dump_json(), media_type="application/json")

    @api.get("/v1/tasks/supported-tasks", responses=responses())
    async def supported_tasks(self) -> dict[str, Any]:
        return {"tasks": [describe(spec) for spec in self.specs]}

    @api.get("/v1/tasks/{task_id}/status", response_model=WorkflowContext,
             responses=responses(404))
    async def status(self, task_id: TaskId) -> Response:
        return await self._context_or_404(task_id)

    @api.get("/v1/tasks/{task_id}/result", response_model=WorkflowContext,
             responses=responses(404))
    async def result(self, task_id: TaskId) -> Response:
        return await self._context_or_404(task_id)

    @api.delete("/v1/tasks/{task_id}", responses=responses(404, 409))
    async def delete_task(self, task_id: TaskId, force: bool = False) -> dict[str, Any]:
        outcome = await self.store.delete_job.remote(task_id, force)
        if outcome.busy and not force:
            raise Conflict(f"stages still running: {outcome.busy}; use ?force=true",
                           {"busy": outcome.busy})
        if not outcome.deleted:
            raise NotFound(f"task {task_id!r} not found")
        return {"task_id": task_id, "deleted": True}

    # ---- files -------------------------------------------------------------------------

    @api.post("/v1/files", status_code=201, responses=responses(409))
    async def upload(self, file: UploadFile, path: str = "") -> dict[str, Any]:
        return await files.save(self.settings.storage_root, file, path,
                                self.settings.max_upload_bytes, self.artifacts)

    @api.get("/v1/files/{path:path}", response_class=FileResponse, responses=responses(404))
    async def download(self, path: str) -> FileResponse:
        return FileResponse(await files.existing(self.settings.storage_root, path,
                                                 self.artifacts))

    @api.delete("/v1/files/{path:path}", responses=responses(404))
    async def delete_file(self, path: str) -> dict[str, Any]:
        return await files.delete(self.settings.storage_root, path, self.artifacts)

    # ---- health ------------------------------------------------------------------------

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(self) -> JSONResponse:
        checks: dict[str, str] = {}
        probes = {
            "redis": lambda: self.reader.redis.ping(),
            "stage_store": lambda: self.store.ping.remote(),
            "callback_sender": lambda: self.sender.ping.remote(),
        }
        if self.artifacts.remote:
            probes["artifacts"] = lambda: asyncio.to_thread(self.artifacts.ping)
        for name, probe in probes.items():
            try:
                ok = bool(await asyncio.wait_for(awaited(probe()), timeout=3))
                checks[name] = "ok" if ok else "failing"
            except Exception:  # the error (it may name hosts) goes to the log, not the body
                log.exception("readiness check %s failed", name)
                checks[name] = "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(status_code=200 if ready else 503,
                            content={"status": "ready" if ready else "not ready",
                                     "checks": checks})
