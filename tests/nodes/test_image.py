"""The image node: prompt template, size, quality, trace notes, validation hooks."""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

import pytest
from PIL import Image

from agentflow import ExecutionError, arun_workflow, check_workflow, run_workflow
from tests.nodes.helpers import RecordingImage, at, chain, entry, impl_of, requests_for

PICS = {"id": "pics", "kind": "image", "provider": "placeholder", "config": {"size": "64x48"}}
REC = {"id": "rec", "kind": "image", "provider": RecordingImage.name, "config": {"size": "32x32"}}


def image(source: str = "pics", **config: Any) -> dict[str, Any]:
    return {"id": "draw", "type": "image", "source": source, "config": config}


def decode(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_default_prompt_and_source_size() -> None:
    state = run_workflow(chain(image(), sources=[PICS]), "a red fox")
    png = decode(state["image_result"])
    assert png.format == "PNG" and png.size == (64, 48)
    assert entry(state, "draw")["output"] == {
        "image": {"format": "png", "width": 64, "height": 48, "revised_prompt": "a red fox"}
    }


def test_node_size_overrides_the_source_and_output_key() -> None:
    state = run_workflow(chain(image(size="40x20", output_key="pic"), sources=[PICS]), "x")
    assert decode(state["pic"]).size == (40, 20)
    assert state["image_result"] is None


def test_prompt_template_quality_and_size_reach_the_provider() -> None:
    marker = uuid.uuid4().hex
    doc = chain(image("rec", prompt="Draw {user_input} in {style.name} " + marker, size="48x16", quality="hd"), sources=[REC])
    state = run_workflow(doc, {"user_input": "owls", "style": {"name": "ink"}})
    (request,) = requests_for(RecordingImage, marker)
    assert request.prompt == f"Draw owls in ink {marker}"
    assert request.size == "48x16" and request.quality == "hd"
    assert entry(state, "draw")["output"]["image"]["revised_prompt"] == request.prompt


def test_unset_size_and_quality_are_left_to_the_source() -> None:
    marker = uuid.uuid4().hex
    state = run_workflow(chain(image("rec", prompt=marker), sources=[REC]), "x")
    (request,) = requests_for(RecordingImage, marker)
    assert request.size is None and request.quality is None
    assert decode(state["image_result"]).size == (32, 32)


async def test_async_run_is_deterministic_per_prompt() -> None:
    doc = chain(image(), sources=[PICS])
    a = await arun_workflow(doc, "same prompt")
    b = run_workflow(doc, "same prompt")
    c = await arun_workflow(doc, "other prompt")
    assert a["image_result"] == b["image_result"] != c["image_result"]
    assert decode(a["image_result"]).size == (64, 48)
    assert entry(a, "draw")["output"]["image"]["format"] == "png"


def test_price_per_image_is_the_cost() -> None:
    priced = {**PICS, "config": {"size": "16x16", "price_per_image": 0.04}}
    state = run_workflow(chain(image(), sources=[priced]), "x")
    assert entry(state, "draw")["cost_usd"] == pytest.approx(0.04)
    assert state["metadata"]["cost_usd"] == pytest.approx(0.04)


def test_missing_template_key() -> None:
    with pytest.raises(ExecutionError, match=r'node "draw": template key "style" in config.prompt has no value'):
        run_workflow(chain(image(prompt="{style}"), sources=[PICS]), "x")


# --- validation hooks -------------------------------------------------------------------------


def test_config_errors() -> None:
    doc = chain(image(size="big", prompt="{a b}"), sources=[PICS])
    errors = check_workflow(doc).errors
    assert at(errors, "nodes[1].config.size") == ['node "draw": "big" does not match the pattern ^\\d{2,5}x\\d{2,5}$']
    (syntax,) = at(errors, "nodes[1].config.prompt")
    assert '"{a b}" is not a state key' in syntax


def test_needs_an_image_source() -> None:
    doc = chain(image("e"))
    assert at(check_workflow(doc).errors, "nodes[1].source") == [
        'node "draw": an image node needs a source of kind "image", but "e" is of kind "llm"'
    ]
    impl = impl_of(image())
    assert impl.required_source_kind(impl.config) == "image"


def test_templates_and_keys() -> None:
    impl = impl_of(image(prompt="{scene.sky} at {time}"))
    assert [(p, t.root_keys) for p, t in impl.templates()] == [("config.prompt", ["scene", "time"])]
    assert impl.written_keys() == ["image_result"]
    assert impl.read_keys() == []
    report = check_workflow(chain(image(prompt="{scene}"), sources=[PICS]))
    assert report.ok
    assert at(report.warnings, "nodes[1].config.prompt")[0].startswith('node "draw": template key "scene" is not written')
