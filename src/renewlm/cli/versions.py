"""`renewlm versions`, `show`, `import`, `export` (filled in by the versions work)."""
