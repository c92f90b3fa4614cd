"""Versions: models in the store (record.py), the graph of their ancestry (lineage.py), what each
cost against retraining (ledger.py), and Hugging Face folders in and out (transfer.py)."""

from renewlm.versions.ledger import cost, data_tokens
from renewlm.versions.lineage import lineage, lineage_corpora, lineage_corpus_tokens
from renewlm.versions.record import (
    EVALUATIONS,
    children,
    list_versions,
    load_version,
    parent_names,
    read_evaluations,
    read_version,
    remove_version,
    write_version,
)
from renewlm.versions.transfer import check_export_target, export_version, import_version

__all__ = [
    "EVALUATIONS", "check_export_target", "children", "cost", "data_tokens", "export_version", "import_version", "lineage",
    "lineage_corpora", "lineage_corpus_tokens", "list_versions", "load_version", "parent_names", "read_evaluations", "read_version",
    "remove_version", "write_version",
]
