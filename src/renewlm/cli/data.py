"""`renewlm tokenizer train`, `prepare`, `corpora`, `mixture show`."""
