"""Versions: their record (record.py), their folders in the store (folders.py), the graph of their
ancestry (lineage.py), what each cost against retraining (ledger.py), what was predicted beside what was
measured (predicted.py), and Hugging Face folders in and out (transfer.py)."""

from renewlm.versions.folders import (
    EVALUATIONS,
    children,
    list_versions,
    load_version,
    read_evaluations,
    read_version,
    remove_version,
    write_record,
    write_version,
)
from renewlm.versions.ledger import cost, data_tokens
from renewlm.versions.lineage import lineage, lineage_corpora, lineage_corpus_tokens, lineage_new_data
from renewlm.versions.predicted import predicted_pairs, predicted_text
from renewlm.versions.record import PARADIGMS, Paradigm, VersionRecord, build_record, parse_record
from renewlm.versions.transfer import check_export_target, export_version, import_version

__all__ = [
    "EVALUATIONS", "PARADIGMS", "Paradigm", "VersionRecord", "build_record", "check_export_target", "children", "cost",
    "data_tokens", "export_version", "import_version", "lineage", "lineage_corpora", "lineage_corpus_tokens", "lineage_new_data", "list_versions", "load_version", "parse_record",
    "predicted_pairs", "predicted_text",
    "read_evaluations", "read_version", "remove_version", "write_record", "write_version",
]
