"""Loaders for local copies of the datasets the field uses, one module per format.

Each module has ``load(data_dir, **options) -> recgym.worlds.World`` and is registered in
:data:`recgym.worlds.WORLDS` under its module name, so ``world="beir"`` with
``world_kwargs={"data_dir": ...}`` builds an environment over it. recgym never downloads data: a
loader called without ``data_dir`` says which files it expects and where they are published.

==============  ==========================================================  =====================
world           files                                                       tasks
==============  ==========================================================  =====================
``beir``        ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``  query -> graded docs
``esci``        Amazon ESCI examples + products parquet files               query -> E/S/C/I
``wands``       Wayfair WANDS ``product.csv``, ``query.csv``, ``label.csv``  query -> E/P/I
``movielens``   ml-latest(-small), ml-25m/20m, ml-10m, ml-1m, ml-100k       history -> next movie
``recbole``     RecBole atomic files ``<name>.item`` + ``.inter``            history -> next item
``amazon2023``  Amazon Reviews 2023 ``<Category>.jsonl`` + ``meta_*.jsonl``  history -> next item
==============  ==========================================================  =====================

docs/datasets.md documents each format's field choices, gains and splits.
"""

from recgym.datasets._common import DataFormatError, DataWarning, LoadReport, MissingDataError

__all__ = ["DataFormatError", "DataWarning", "LoadReport", "MissingDataError"]
