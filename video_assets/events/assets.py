"""vision_events: after a video's predictions land, its per-minute summaries go to Vision Events.

A delivery problem never fails the run (the predictions are already safe): it fails the asset's
`delivered` check, visible in the UI, and the next materialization sends the same event ids again.
"""

from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from video_assets.events.sink import VisionEvents
from video_assets.events.summaries import summary_events
from video_assets.glossary import described
from video_assets.predictions.store import PredictionStore
from video_assets.sql.models import SqlModel

DELIVERED = "delivered"


METADATA = {
    "sent": "Summary events Vision Events accepted.",
    "rejected": "Events it rejected (see problems).",
    "failed_batches": "Batches that could not be delivered after retries (see problems).",
    "use_case": "The Vision Events use case the events went to.",
    "events": "Summary events made for this video or camera hour.",
    "problems": "What was rejected or failed, one line each.",
}


def build_vision_events_asset(
    partitions_def: dg.PartitionsDefinition,
    upstream: dg.AssetKey,
    group: str,
    name: str,
    video_id: Callable[[dg.AssetExecutionContext], str],
    crossing_steps: SqlModel,
) -> dg.AssetsDefinition:
    """`video_id` maps a partition to the video_id its rows carry (a video, or a camera hour);
    `crossing_steps` is the SQL model that counts line crossings per frame."""

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        group_name=group,
        deps=[upstream],
        kinds={"roboflow"},
        check_specs=[dg.AssetCheckSpec(DELIVERED, asset=name, description="Every summary event was accepted.")],
        description=described(
            "Per-minute summary events (counts per class, tracks, line crossings) sent to Vision Events.", METADATA
        ),
    )
    def _send(
        context: dg.AssetExecutionContext, events_sink: VisionEvents, store: PredictionStore
    ) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        events = summary_events(store, crossing_steps, video_id(context), events_sink.use_case, now)
        delivery = events_sink.send(events, context.log)
        for problem in delivery.rejected + delivery.failed:
            context.log.warning(f"Vision Events: {problem}")
        details = {
            "sent": len(delivery.sent),
            "rejected": len(delivery.rejected),
            "failed_batches": len(delivery.failed),
        }
        return dg.MaterializeResult(
            metadata={**details, "use_case": events_sink.use_case, "events": len(events)},
            check_results=[
                dg.AssetCheckResult(
                    check_name=DELIVERED,
                    passed=delivery.ok,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        **details,
                        "problems": dg.MetadataValue.md(
                            "\n".join(f"- {p}" for p in delivery.rejected + delivery.failed) or "none"
                        ),
                    },
                )
            ],
        )

    return _send
