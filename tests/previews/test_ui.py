"""The previews as a person sees them: the real `video-assets dev` services, a real headless Chromium.

A dropped video runs as the job `process_video`; on the video_preview partition's page in the Dagster
UI, its contact sheet, activity chart and track snapshots are images that load (served by the media
server at the addresses the Markdown metadata holds). A screenshot of the page is kept for a person.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest
import requests

pytestmark = pytest.mark.slow

LATEST_PREVIEW = """
query ($partition: String!) {
  assetNodes(assetKeys: [{path: ["video_preview"]}]) {
    assetMaterializations(partitions: [$partition], limit: 1) {
      metadataEntries { label ... on MarkdownMetadataEntry { mdStr } }
    }
  }
}"""
# Each image on the page that the media server serves: whether it loaded, and its size.
IMAGES = """
[...document.images].filter(i => i.src.startsWith(%r))
  .map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))"""
# Dagster's first-visit "Join the community" dialog covers the page: a person would press Skip.
SKIP_DIALOG = "[...document.querySelectorAll('button')].filter(b => b.textContent.trim() == 'Skip').map(b => b.click()).length"


def test_a_dropped_video_shows_its_preview_images_on_its_partition_page(live_ui, copy_sample, chromium, tmp_path) -> None:
    copy_sample("two_walkers.mp4", live_ui.settings.inbox)
    [run] = live_ui.wait_for_runs({"dagster/sensor_name": "drop_folder_sensor"}, count=1)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "process_video"
    key = run.tags["dagster/partition"]

    [node] = live_ui.graphql(LATEST_PREVIEW, {"partition": key})["assetNodes"]
    markdown = {e["label"]: e.get("mdStr") for e in node["assetMaterializations"][0]["metadataEntries"]}
    media = live_ui.settings.media_base_url
    for label in ("contact_sheet", "activity", "top_tracks"):
        assert f"]({media}/" in markdown[label] and len(markdown[label]) < 1000, markdown[label]

    chromium.goto(f"{live_ui.url}/assets/video_preview?view=partitions&partition={quote(key)}")
    images = chromium.wait_for(
        f"(() => {{ const found = {IMAGES % media}; "
        "return found.length >= 4 && found.every(i => i.complete && i.width > 0) ? found : null; })()",
        timeout_s=90,
    )
    by_name = {Path(i["src"]).name: i for i in images}
    assert by_name["contact_sheet.jpg"]["width"] > 900 and by_name["activity.png"]["width"] == 960
    assert {"0.jpg", "1.jpg"} <= set(by_name)  # both walkers' snapshots, in the top tracks table
    chromium.evaluate(SKIP_DIALOG)
    shot = chromium.screenshot(tmp_path / "video_preview.png")
    keep = os.environ.get("VIDEO_ASSETS_SCREENSHOTS")
    if keep:  # where a person (or CI's artifacts) can look at it
        shutil.copy(shot, Path(keep) / shot.name)
    assert shot.stat().st_size > 50_000

    # Why pictures are served by address: Markdown over 1000 characters (an inlined data: URI of any picture
    # worth seeing) is shown only behind a "[Show Markdown]" button, not on the page (and it bloats the event log).
    snapshot = base64.b64encode(requests.get(by_name["0.jpg"]["src"], timeout=10).content).decode()
    live_ui.instance.report_runless_asset_event(
        dg.AssetMaterialization("data_uri_probe", metadata={"inline": dg.MetadataValue.md(f"![inline](data:image/jpeg;base64,{snapshot})")})
    )
    chromium.goto(f"{live_ui.url}/assets/data_uri_probe?view=events")
    chromium.wait_for("document.body && document.body.innerText.includes('[Show Markdown]')")
    assert chromium.evaluate("[...document.images].filter(i => i.alt == 'inline').length") == 0

    # What the browser fetched is what the media server serves, and nothing outside its folders.
    assert requests.get(by_name["contact_sheet.jpg"]["src"], timeout=10).headers["Content-Type"] == "image/jpeg"
    assert requests.get(f"{media}/previews/../state/services.lock", timeout=10).status_code == 404


def test_a_wide_sql_model_reads_whole_on_its_page(live_ui, copy_sample, chromium, tmp_path) -> None:
    """video_summary has 17 columns: its preview shows them all, one line each, without running off the page,
    and its column schema says what each means."""
    if not live_ui.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "drop_folder_sensor"})):
        copy_sample("one_runner.mp4", live_ui.settings.inbox)
        live_ui.wait_for_runs({"dagster/sensor_name": "drop_folder_sensor"}, count=1)
    deadline = time.monotonic() + 240  # the automation sensor (every 30 s) rebuilds the models
    while live_ui.instance.get_latest_materialization_event(dg.AssetKey("video_summary")) is None:
        assert time.monotonic() < deadline, "the SQL models were not rebuilt after the video"
        time.sleep(2)
    chromium.goto(f"{live_ui.url}/assets/video_summary")
    # The column schema (the definition's) shows before the latest materialization's preview table loads.
    chromium.wait_for("[...document.querySelectorAll('.dagster-markdown table')].some(t => t.rows.length == 18)", timeout_s=60)
    chromium.evaluate(SKIP_DIALOG)
    fits = chromium.evaluate(
        "[...document.querySelectorAll('.dagster-markdown table')].map(t => "
        "({rows: t.rows.length, fits: t.getBoundingClientRect().right <= window.innerWidth}))"
    )
    assert {"rows": 18, "fits": True} in fits, fits  # a header and one line per column, inside the window
    shot = chromium.screenshot(tmp_path / "video_summary.png")
    keep = os.environ.get("VIDEO_ASSETS_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
