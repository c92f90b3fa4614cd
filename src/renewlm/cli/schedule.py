"""`renewlm schedule show|plot` (filled in by the schedules work)."""
