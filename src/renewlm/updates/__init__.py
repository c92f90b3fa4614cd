"""Version updates above the training engine: the paradigms (continue, switch, retrain) and `plan`'s cost model."""
