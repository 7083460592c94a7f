"""Batch runs over HTTP (spec section 13): start one on a saved workflow, follow it, read it.

``POST /api/v1/workflows/{id}/batches`` takes the rows as JSON (``{"rows": [...], ...}``)
or as an uploaded CSV / JSON Lines file (``multipart/form-data``: ``file`` and the same
options as form fields) of up to ``AGENTFLOW_MAX_UPLOAD_BYTES`` (default 100 MiB), stores
the batch and answers 202 with its id while the rows run: in this process on a background
thread (``local``) or on Celery workers (``celery``, this process handing them out). The
other routes read the store, so any process sharing it answers for any batch.

Each route calls what the CLI's ``batch`` commands call (:mod:`agentflow.batch`).
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import PlainTextResponse

from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, errors
from agentflow.api.requests import SLUG
from agentflow.batch import BatchHandle, compare_batches, create_batch
from agentflow.batch.export import to_csv, to_jsonl
from agentflow.batch.service import batch_results, batch_status, cancel_batch, public_status, resume_batch
from agentflow.errors import PayloadTooLarge, ValidationError
from agentflow.security.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["batches"])

WorkflowId = Annotated[str, Path(pattern=SLUG, description="the saved workflow's id")]
BatchId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="a batch id")]

#: Batches this process runs or hands out, kept so their threads are not forgotten.
_handles: dict[str, BatchHandle] = {}
_handles_lock = threading.Lock()


class BatchRequest(BaseModel):
    """The rows as JSON, and how to run them (the options of ``batch run``)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[Any] = Field(description="one object per row", min_length=1)
    version: int | None = Field(None, ge=1, description="a saved version (default: the latest)")
    column: str = Field("user_input", min_length=1, description="the field that becomes user_input")
    backend: Literal["local", "celery"] = "local"
    concurrency: int = Field(100, ge=1, le=10_000, description="rows at once (celery: inside one worker task)")
    subqueue: str = Field("batch", min_length=1, max_length=64)
    expected: str | None = Field(None, min_length=1, description="the field holding the expected value")
    scorer: str | None = Field(None, description="exact, contains, regex or json:PATH")
    output_key: str = Field("final_output", min_length=1)
    chunk_size: int | None = Field(None, ge=1, le=1000, description="rows per Celery task")
    dataset: str | None = Field(None, max_length=256, description="a name for the rows, shown in lists")


class BatchStarted(BaseModel):
    batch_id: str
    status: str
    total: int


class BatchStatus(BaseModel):
    """The ``batch status`` object; ``done + failed + running + pending == total``."""

    model_config = ConfigDict(extra="allow")

    batch_id: str
    workflow_id: str
    status: Literal["queued", "running", "finished", "cancelled", "failed"]
    total: int
    done: int
    failed: int
    running: int
    pending: int
    mean_score: float | None = None
    waiting: int = Field(0, description="rows waiting on a queue, as their runners last reported")


class RowResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    row: int
    status: str
    run_id: str | None = None
    final_output: Any = None
    error: dict[str, Any] | None = None
    latency_ms: float | None = None
    tokens: dict[str, int] | None = None
    cost_usd: float | None = None
    score: float | None = None


_FORM_INTS = ("version", "concurrency", "chunk_size")


async def _upload(request: Request, limit: int) -> tuple[BatchRequest, bytes, str | None]:
    """The options (form fields) and the file of a multipart request."""
    form = await request.form(max_files=1, max_fields=32)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationError('send the rows as a file field named "file" (.csv or .jsonl)',
                                  errors=[{"path": "file", "message": "missing"}])
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(
                f"the uploaded file is over the limit of {limit} bytes (AGENTFLOW_MAX_UPLOAD_BYTES)",
                {"max_upload_bytes": limit},
            )
        fields: dict[str, Any] = {"rows": [None]}
        for key, value in form.multi_items():
            if key == "file" or not isinstance(value, str) or value == "":
                continue
            if key in _FORM_INTS:
                try:
                    fields[key] = int(value)
                except ValueError:
                    raise ValidationError(f"{key}: must be a whole number",
                                          errors=[{"path": key, "message": "must be a whole number"}]) from None
            else:
                fields[key] = value
        try:
            options = BatchRequest.model_validate(fields)
        except Exception as exc:
            from agentflow.api.errors import validation_error

            raise validation_error(list(getattr(exc, "errors", list)())) from None
        return options, data, upload.filename or options.dataset
    finally:
        await form.close()


def _keep(handle: BatchHandle) -> None:
    with _handles_lock:
        for done in [k for k, h in _handles.items() if h.done]:
            _handles.pop(done, None)
        _handles[handle.batch_id] = handle


@router.post(
    "/workflows/{workflow_id}/batches",
    status_code=202,
    response_model=BatchStarted,
    responses=errors(*AUTH, 404, *BODY, 502),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": BatchRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": ".csv or .jsonl"},
                            **{k: {"type": "string"} for k in BatchRequest.model_fields if k not in ("rows",)},
                        },
                    }
                },
            },
            "required": True,
        }
    },
)
async def start(request: Request, ctx: Context, workflow_id: WorkflowId, who: Principal = need("run")) -> Any:
    """Run the saved workflow over every row: rows as JSON, or an uploaded CSV / JSON Lines
    file. Answers 202 with the batch id once the batch is stored; follow it with
    ``GET /api/v1/batches/{batch_id}``."""
    limit = ctx.settings.max_upload_bytes
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        options, data, name = await _upload(request, limit)
    else:
        raw = await request.body()
        if len(raw) > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes (AGENTFLOW_MAX_UPLOAD_BYTES)")
        try:
            options = BatchRequest.model_validate_json(raw or b"{}")
        except Exception as exc:
            from agentflow.api.errors import validation_error

            raise validation_error(list(getattr(exc, "errors", list)())) from None
        data, name = options.rows, options.dataset
    store = ctx.store
    saved = await ctx.call(store.get_workflow, workflow_id, options.version)
    spec = ctx.saved_spec(saved)
    opts = options.model_dump(exclude={"rows", "version", "dataset"})
    batch = await run_in_threadpool(
        lambda: create_batch(spec, data, store=store, user=who.name, workflow_version=saved["version"],
                             dataset_name=name, **opts)
    )
    _keep(BatchHandle(store, batch["batch_id"]).start())
    return {"batch_id": batch["batch_id"], "status": batch["status"], "total": batch["total"]}


@router.get("/batches", response_model=list[BatchStatus], responses=errors(*AUTH, 422),
            dependencies=[need("read")])
async def list_batches(
    ctx: Context,
    workflow: Annotated[str | None, Query(max_length=64, description="only this workflow's batches")] = None,
    status: Annotated[str | None, Query(max_length=16, description="only batches with this status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """Batches, newest first, with their progress."""
    rows = await ctx.call(ctx.store.list_batches, workflow=workflow, status=status, limit=limit, offset=offset)
    out = []
    for b in rows:
        item = public_status(b)
        item.update(workflow_version=b["workflow_version"], backend=b["backend"], dataset=b["dataset"],
                    user=b["user"], created_at=b["created_at"], finished_at=b["finished_at"], waiting=0)
        out.append(item)
    return out


@router.get("/batches/{batch_id}", response_model=BatchStatus, responses=errors(*AUTH, 404, 422),
            dependencies=[need("read")])
async def get_batch(ctx: Context, batch_id: BatchId) -> Any:
    """The ``batch status`` object: where the rows are, and the mean score."""
    store = ctx.store
    return await ctx.call(lambda: batch_status(batch_id, store=store))


@router.get(
    "/batches/{batch_id}/results",
    response_model=list[RowResult],
    responses={
        **errors(*AUTH, 404, 422),
        200: {"description": "the row lines in row order (JSON; or JSON Lines / CSV with ?format=)",
              "content": {"application/x-ndjson": {}, "text/csv": {}}},
    },
    dependencies=[need("read")],
)
async def get_results(
    ctx: Context,
    batch_id: BatchId,
    format: Annotated[Literal["json", "jsonl", "csv"], Query(description="json (default), jsonl or csv")] = "json",
) -> Any:
    """The recorded rows, in row order: ``{"row", "status", "run_id", "final_output",
    "error", "latency_ms", "tokens", "cost_usd", "score"}``."""
    store = ctx.store
    rows = await ctx.call(lambda: batch_results(batch_id, store=store))
    if format == "jsonl":
        return PlainTextResponse(to_jsonl(rows), media_type="application/x-ndjson")
    if format == "csv":
        return PlainTextResponse(to_csv(rows), media_type="text/csv")
    return rows


@router.post("/batches/{batch_id}/cancel", status_code=202, response_model=BatchStatus,
             responses=errors(*AUTH, 404, 409, 422))
async def cancel(ctx: Context, batch_id: BatchId, who: Principal = need("cancel")) -> Any:
    """Stop handing out the batch's rows (rows already running finish); 409 once it ended."""
    store = ctx.store
    return await ctx.call(lambda: cancel_batch(batch_id, store=store))


@router.post("/batches/{batch_id}/resume", status_code=202, response_model=BatchStatus,
             responses=errors(*AUTH, 404, 422, 502))
async def resume(ctx: Context, batch_id: BatchId, who: Principal = need("run")) -> Any:
    """Run the rows not yet recorded (after a cancel, a failure or a lost process)."""
    store = ctx.store
    handle = await run_in_threadpool(lambda: resume_batch(batch_id, store=store, background=True))
    assert isinstance(handle, BatchHandle)
    if handle.started:
        _keep(handle)
    return await ctx.call(lambda: batch_status(batch_id, store=store))


@router.get("/batches/{batch_a}/compare/{batch_b}", responses=errors(*AUTH, 404, 422),
            dependencies=[need("read")])
async def compare(ctx: Context, batch_a: BatchId, batch_b: BatchId) -> Any:
    """Two batches row by row (status, score, output, latency) with a summary."""
    store = ctx.store
    return json.loads(json.dumps(await ctx.call(lambda: compare_batches(batch_a, batch_b, store=store)),
                                 default=str))
