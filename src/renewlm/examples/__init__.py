"""Worked examples built on the library from data every Python install ships: `renewlm demo`'s whole flow
(examples/demo.py), whose corpora the reproduction scripts in benchmarks/reproduce/ reuse, and a synthetic
store of records shaped like renewlm's, made without training, that the report's tests and benchmark draw
(examples/synthetic.py)."""
