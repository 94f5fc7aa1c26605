"""Pydantic models of Langbase's Images API as relaygate serves it, for the OpenAPI document (the request is
checked field by field in :mod:`.request`, the answer built in :mod:`.answer`; the schemathesis run in
``tests/test_openapi_fuzz.py`` holds them to these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from relaygate.dialects.images.request import MAX_DIMENSION, MAX_IMAGES, MAX_STEPS

__all__ = ["ImagesAnswer", "ImagesRequest"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ImagesRequest(_Open):
    """``POST /v1/images``: a prompt for a model named ``provider:model`` (or ``provider/model``)."""

    model: str = Field(min_length=1, description="provider:model, e.g. openai:gpt-image-1 or mock:image.")
    prompt: str = Field(min_length=1, pattern=r"\S")
    width: int | None = Field(None, ge=1, le=MAX_DIMENSION, description="Pixels; give height too.")
    height: int | None = Field(None, ge=1, le=MAX_DIMENSION, description="Pixels; give width too.")
    n: int | None = Field(None, ge=1, le=MAX_IMAGES)
    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="Diffusion steps, where the model has them.")
    image_url: str | None = Field(None, description="An http(s) or data: URL of an image to start from.")


class ImageUrl(_Open):
    url: str


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageUrl
    index: int


class ImagesMessage(_Open):
    role: Literal["assistant"]
    content: None
    images: list[ImagePart]


class ImagesChoice(_Open):
    index: int
    finish_reason: str
    native_finish_reason: str
    message: ImagesMessage


class ImagesUsage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: dict[str, int]


class ImagesAnswer(_Open):
    """One choice per image, each holding its image in ``message.images``."""

    id: str
    provider: str
    model: str
    object: Literal["chat.completion"]
    created: int
    choices: list[ImagesChoice]
    usage: ImagesUsage
