"""Uploaded files: `POST /v1/files` is multipart/form-data (decision 0011's one exception to
JSON), the file checked by its content (PDF, PNG, JPEG for dispute evidence; CSV for
reconciliation), at most 5 MB."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile

from clearport.files.domain import MAX_FILE_BYTES, FilePurpose
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.models.base import FileId
from clearport.http.models.disputes import File as FileModel
from clearport.http.representation import file_json
from clearport.http.responses import JSONResponse

router = APIRouter(route_class=ApiRoute, tags=["disputes"])

UPLOAD_PATH = "/v1/files"
# What a request carrying the largest file may weigh: the file and the form's own bytes.
MAX_UPLOAD_BODY_BYTES = MAX_FILE_BYTES + 64 * 1024


@router.post(UPLOAD_PATH, status_code=201, response_model=FileModel)
async def upload_file(
    request: Request,
    file: UploadFile = File(description="PDF, PNG or JPEG evidence, or a CSV file; 5 MB at most."),
    purpose: FilePurpose = Form(),
) -> JSONResponse:
    data = await file.read(MAX_FILE_BYTES + 1)  # one byte more tells "too large"
    stored = await container_of(request).files.upload(
        principal_of(request), origin_of(request), purpose, data
    )
    return JSONResponse(file_json(stored), status_code=201)


@router.get("/v1/files/{file_id}", response_model=FileModel)
async def get_file(request: Request, file_id: FileId) -> JSONResponse:
    stored = await container_of(request).files.get(principal_of(request), file_id)
    return JSONResponse(file_json(stored))
