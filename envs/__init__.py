"""Environment specs registered by ``import recgym``: one TOML file per id."""
