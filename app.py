"""AgentFlow workbench: home page.

For now a minimal home: the example workflows at a glance and a quick run of one, drawn
live from ``stream_workflow``. The full workbench (editor, sources, queues, graph, runs)
lands page by page in ``pages/``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import streamlit as st

from agentflow import check_workflow, stream_workflow

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"

st.set_page_config(page_title="AgentFlow", page_icon="🔀", layout="wide")
st.title("AgentFlow")
st.caption("LLM workflows written as JSON, run on LangGraph: offline examples below need no keys.")


@st.cache_data(show_spinner=False)
def load_examples() -> dict[str, dict]:
    found = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        report = check_workflow(path)
        doc = json.loads(path.read_text())
        found[path.name] = {
            "doc": doc,
            "ok": report.ok,
            "problems": len(report.errors),
            "warnings": len(report.warnings),
            "offline": all(s.get("provider") in {"echo", "placeholder", "sqlite"} for s in doc.get("sources", [])),
        }
    return found


examples = load_examples()
st.subheader("Example workflows")
st.dataframe(
    [
        {
            "file": name,
            "id": e["doc"].get("id"),
            "name": e["doc"].get("name") or e["doc"].get("id"),
            "nodes": len(e["doc"].get("nodes", [])),
            "valid": e["ok"],
            "offline": e["offline"],
        }
        for name, e in examples.items()
    ],
    hide_index=True,
    width="stretch",
)

runnable = [name for name, e in examples.items() if e["ok"] and e["offline"]]
st.subheader("Quick run")
default = runnable.index("triage.json") if "triage.json" in runnable else 0
choice = st.selectbox("Workflow", runnable, index=default, key="home_workflow")
if choice:
    st.caption(examples[choice]["doc"].get("description", ""))
text = st.text_input("Input", value="img: a red fox", key="home_input")
if st.button("Run", type="primary", key="home_run", disabled=not choice):
    doc = examples[choice]["doc"]
    texts: dict[str, str] = {}
    slots: dict[str, object] = {}
    final: dict = {}
    with st.status("Running…", expanded=True) as status:
        for event in stream_workflow(doc, {"user_input": text}):
            node = event.get("node")
            if event["type"] == "node_start":
                slots[node] = st.empty()
                slots[node].markdown(f"⏳ **{node}** ({event['data']['type']})")
            elif event["type"] == "token":
                texts[node] = texts.get(node, "") + event["data"]
                slots[node].markdown(f"⏳ **{node}**: {texts[node]}")
            elif event["type"] == "node_retry":
                texts[node] = ""
            elif event["type"] == "node_end":
                entry = event["data"]["trace"]
                mark = "✅" if entry["status"] == "succeeded" else "❌"
                figures = f"{entry['latency_ms']:.0f} ms, {entry['tokens']['total']} tokens"
                slots[node].markdown(f"{mark} **{node}**: {figures}")
            elif event["type"] == "run_end":
                final = event["data"]
        meta = final.get("metadata", {})
        failed = meta.get("status") == "failed"
        status.update(label=f"Run {meta.get('status')} in {meta.get('total_runtime_ms', 0):.0f} ms",
                      state="error" if failed else "complete")
    if meta.get("error"):
        st.error(f"{meta['error']['error_type']}: {meta['error']['message']}")
    image = final.get("image_result")
    if isinstance(image, str) and image.startswith("iVBOR"):
        st.image(base64.b64decode(image), caption="image_result")
    if final.get("text_result"):
        st.markdown(f"**text_result**: {final['text_result']}")
    if final.get("db_result"):
        st.dataframe(final["db_result"], hide_index=True)
    st.dataframe(
        [{k: e[k] for k in ("node", "status", "latency_ms", "attempts", "queue_wait_ms", "cost_usd")}
         for e in meta.get("trace", [])],
        hide_index=True,
    )
