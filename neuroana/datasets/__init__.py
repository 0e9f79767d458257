from neuroana.datasets.session import SyntheticSession, make_session  # noqa: F401
