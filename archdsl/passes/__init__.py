"""Analysis passes: small pure functions over an elaborated model.

Each reads the graph (and earlier passes' tables) and returns new tables and
diagnostics; none mutates the model.  ``archdsl.analysis.analyze`` runs them
in order: shapes, then costs, memory and receptive fields.
"""
