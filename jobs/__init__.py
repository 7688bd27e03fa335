"""Entry points: arguments, config, session, pipeline, exit code. Each module runs with `python -m jobs.<name>`."""
