"""Domain records <-> tracewheel.v1 messages, shared by the gRPC servicer and the events."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from tracewheel.core.trace_proto import trace_to_proto
from tracewheel.dataset.curation import CurationStatus
from tracewheel.dataset.records import BuildRecord, StoredTrace
from tracewheel.v1 import dataset_pb2, events_pb2

_STATUS_TO_PROTO = {
    CurationStatus.PENDING: dataset_pb2.CURATION_STATUS_PENDING,
    CurationStatus.APPROVED: dataset_pb2.CURATION_STATUS_APPROVED,
    CurationStatus.REJECTED: dataset_pb2.CURATION_STATUS_REJECTED,
}
_STATUS_FROM_PROTO: dict[int, CurationStatus] = {value: key for key, value in _STATUS_TO_PROTO.items()}


def status_to_proto(status: CurationStatus) -> dataset_pb2.CurationStatus.ValueType:
    return _STATUS_TO_PROTO[status]


def status_from_proto(status: int) -> CurationStatus | None:
    return _STATUS_FROM_PROTO.get(status)


def stored_to_proto(stored: StoredTrace) -> dataset_pb2.StoredTrace:
    return dataset_pb2.StoredTrace(
        trace=trace_to_proto(stored.trace),
        status=_STATUS_TO_PROTO[stored.status],
        reason=stored.reason,
        revision=stored.revision,
        tags=list(stored.tags),
        notes=stored.notes,
    )


def dataset_built_event(record: BuildRecord) -> events_pb2.DatasetBuilt:
    built_at = Timestamp()
    built_at.FromDatetime(record.built_at)
    return events_pb2.DatasetBuilt(
        version=record.version,
        path=record.path,
        base_model=record.base_model,
        template_sha256=record.template_sha256,
        trace_ids=sorted(record.trace_revisions),
        train_rows=record.train_rows,
        eval_rows=record.eval_rows,
        supervised_tokens=record.supervised_tokens,
        built_at=built_at,
    )
