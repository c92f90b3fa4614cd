"""`python -m renewlm ...`, as `torchrun -m renewlm train RUN.yaml` needs."""

from renewlm.cli import main

main()
