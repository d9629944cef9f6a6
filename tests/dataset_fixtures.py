"""Small datasets written in each real format, for the loader, env and export tests.

Each ``write_*`` function writes a folder the way the dataset is published (file names, headers,
separators, encodings) with content small enough to check by hand, and returns the path to pass as
``data_dir``. ``DATASETS`` maps each registered dataset id to its writer and world kwargs.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# ---------------------------------------------------------------- BEIR

BEIR_CORPUS = [
    {"_id": "d1", "title": "Aspirin and heart attacks",
     "text": "Low dose aspirin reduces the risk of myocardial infarction."},
    {"_id": "d2", "title": "Vitamin D and bone density",
     "text": "Vitamin D supplements improve bone mineral density in elderly women."},
    {"_id": "d3", "title": "", "text": "Statins lower LDL cholesterol levels."},
    {"_id": "d4", "title": "Exercise and depression",
     "text": "Aerobic exercise reduces symptoms of depression and improves bone health."},
    {"_id": "d5", "title": "Coffee consumption",
     "text": "Coffee intake is associated with a lower risk of type 2 diabetes."},
    {"_id": "d6", "title": "Sleep and memory", "text": "Sleep deprivation impairs memory."},
]
BEIR_QUERIES = {"q1": "does aspirin prevent heart attacks", "q2": "vitamin d bone health",
                "q3": "statins cholesterol", "q4": "exercise for depression",
                "q5": "coffee and diabetes risk", "q6": "sleep memory"}
BEIR_QRELS = {"train": [("q4", "d4", 1), ("q5", "d5", 1), ("q6", "d6", 1)],
              "test": [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d4", 1), ("q3", "d3", 1)]}


def write_jsonl(path: Path, records: list[dict], gz: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_beir(folder: Path, splits: tuple[str, ...] = ("train", "test"), gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_jsonl(folder / f"corpus.jsonl{suffix}", BEIR_CORPUS, gz)
    write_jsonl(folder / f"queries.jsonl{suffix}",
                [{"_id": q, "text": t, "metadata": {}} for q, t in BEIR_QUERIES.items()], gz)
    (folder / "qrels").mkdir(exist_ok=True)
    for split in splits:
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in BEIR_QRELS[split]]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


# ---------------------------------------------------------------- Amazon ESCI

ESCI_PRODUCTS = [
    # product_id, locale, title, description, bullet points, brand, color
    ("B01", "us", "Stainless steel travel mug 16 oz", "<p>Keeps coffee <b>hot</b> for 6 hours</p>",
     "Vacuum insulated\nLeak proof lid", "Contigo", "Silver"),
    ("B02", "us", "Ceramic coffee mug", None, "Dishwasher safe", "Bodum", "White"),
    ("B03", "us", "Insulated water bottle 32 oz", "Cold for 24 hours", None, "Hydro Flask", "Blue"),
    ("B04", "us", "Coffee grinder", "Burr grinder for espresso", "18 grind settings", "Baratza",
     "Black"),
    ("B05", "us", "Tea kettle", "Whistling stovetop kettle", None, "OXO", "Red"),
    ("B06", "us", "", None, None, None, None),  # no text at all
    ("B01", "es", "Taza de viaje de acero", "Mantiene el café caliente", None, "Contigo", "Plata"),
]
ESCI_EXAMPLES = [
    # query_id, query, product_id, locale, label, small_version, split
    (1, "travel mug", "B01", "us", "E", 1, "train"),
    (1, "travel mug", "B02", "us", "S", 1, "train"),
    (1, "travel mug", "B03", "us", "C", 1, "train"),
    (1, "travel mug", "B05", "us", "I", 1, "train"),
    (2, "coffee grinder burr", "B04", "us", "E", 1, "test"),
    (2, "coffee grinder burr", "B02", "us", "C", 1, "test"),
    (3, "stovetop kettle", "B05", "us", "E", 0, "train"),  # large version only
    (4, "only irrelevant", "B03", "us", "I", 1, "train"),
    (5, "water bottle", "B03", "us", "E", 1, "test"),
    (5, "water bottle", "B99", "us", "S", 1, "test"),  # not in the products file
    (6, "taza de viaje", "B01", "es", "E", 1, "train"),
]


def write_esci(folder: Path, products=ESCI_PRODUCTS, examples=ESCI_EXAMPLES,
               drop_column: str | None = None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    prod = {name: [p[i] for p in products] for i, name in enumerate(
        ["product_id", "product_locale", "product_title", "product_description",
         "product_bullet_point", "product_brand", "product_color"])}
    ex = {name: [e[i] for e in examples] for i, name in enumerate(
        ["query_id", "query", "product_id", "product_locale", "esci_label", "small_version",
         "split"])}
    ex["example_id"] = list(range(len(examples)))
    ex["large_version"] = [1] * len(examples)
    for table in (prod, ex):
        table.pop(drop_column, None)
    pq.write_table(pa.table(prod), folder / "shopping_queries_dataset_products.parquet")
    pq.write_table(pa.table(ex), folder / "shopping_queries_dataset_examples.parquet")
    return folder


# ---------------------------------------------------------------- Wayfair WANDS

WANDS_HEADER = ("product_id\tproduct_name\tproduct_class\tcategory hierarchy\tproduct_description\t"
                "product_features\trating_count\taverage_rating\treview_count")
WANDS_PRODUCTS = [
    "0\tsolid wood platform bed\tBeds\tFurniture / Bedroom Furniture / Beds\tgood, deep sleep "
    "can be quite difficult\toverallwidth-sidetoside:64.7|dsprimaryproductstyle:modern\t15.0\t4.5"
    "\t15",
    "1\tall-clad 7 qt . slow cooker\tSlow Cookers\tKitchen & Tabletop / Small Kitchen Appliances"
    "\tthis slow cooker is a kitchen workhorse\tcapacityquarts:7|programmable:yes\t100.0\t2.0\t98",
    "2\tsalon chair with massage\tMassage Chairs\tFurniture / Chairs\t\tcolor:black\t\t\t",
    "3\tsmart coffee table with usb\tCoffee & Cocktail Tables\tFurniture / Living Room\t"
    "a smart table\tusbports:2\t7.0\t4.0\t7",
    "4\tturquoise pillow cover\tAccent Pillows\tDécor / Pillows\tsoft velvet\tcolor:turquoise"
    "\t3\t5\t3",
]
WANDS_LABELS = [
    # id, query_id, product_id, label
    (0, 0, 2, "Exact"), (1, 0, 0, "Irrelevant"), (2, 1, 3, "Exact"), (3, 1, 0, "Partial"),
    (4, 3, 4, "Exact"), (5, 3, 1, "Partial"), (6, 4, 1, "Exact"), (7, 5, 0, "Irrelevant"),
    (8, 6, 0, "Exact"), (9, 7, 1, "Partial"), (10, 8, 3, "Exact"), (11, 9, 2, "Partial"),
]


def write_wands(folder: Path, queries: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "product.csv").write_text("\n".join([WANDS_HEADER, *WANDS_PRODUCTS]) + "\n")
    if queries is None:
        queries = "query_id\tquery\tquery_class\n" + "".join(
            f"{i}\t{q}\t{c}\n" for i, (q, c) in enumerate([
                ("salon chair", "Massage Chairs"), ("smart coffee table", "Coffee Tables"),
                ("dinosaur", "Kids Wall Décor"), ("turquoise pillows", "Accent Pillows"),
                ("slow cooker 7 qt", "Slow Cookers"), ("bed frame", "Beds"),
                ("wood platform bed", "Beds"), ("kitchen appliance", "Slow Cookers"),
                ("usb table", "Coffee Tables"), ("massage", "Massage Chairs")]))
    (folder / "query.csv").write_text(queries)
    (folder / "label.csv").write_text("id\tquery_id\tproduct_id\tlabel\n" + "".join(
        f"{a}\t{b}\t{c}\t{d}\n" for a, b, c, d in WANDS_LABELS))
    return folder


# ---------------------------------------------------------------- sequential data

GENRES = ["Action", "Comedy", "Drama", "Sci-Fi", "Romance", "Horror"]
WORDS = ["star", "night", "river", "ghost", "city", "love", "war", "dream", "iron", "summer",
         "shadow", "garden", "storm", "silent", "golden", "wild", "last", "blue", "secret", "road"]


def movies(n: int = 40, seed: int = 0) -> list[tuple[int, str, str]]:
    """``(movieId, title with year, pipe-separated genres)``, distinct titles."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(1, n + 1):
        words = rng.choice(WORDS, size=2, replace=False)
        title = f"{words[0].title()} {words[1].title()} {m}"
        genres = "|".join(rng.choice(GENRES, size=int(rng.integers(1, 3)), replace=False))
        out.append((m, f"{title} ({1980 + m % 30})", genres))
    return out


def interactions(n_users: int = 30, n_items: int = 40, seed: int = 0
                 ) -> list[tuple[int, int, float, int]]:
    """``(user, item, rating, timestamp)`` rows, 4-9 per user, in (user, item) order as
    MovieLens files are (so file order is not time order)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, n_users + 1):
        items = rng.choice(np.arange(1, n_items + 1), size=int(rng.integers(4, 10)), replace=False)
        times = 1_000_000_000 + rng.choice(10_000, size=len(items), replace=False) * 60
        for item, t in sorted(zip(items.tolist(), times.tolist(), strict=True)):
            rows.append((user, item, float(rng.integers(1, 11)) / 2, t))
    return rows


def write_movielens_csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)

    def quote(s: str) -> str:
        return f'"{s}"' if "," in s else s

    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{m},{quote(t)},{g}\n" for m, t, g in movies()))
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},{r},{t}\n" for u, i, r, t in interactions()))
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,1,Mind-bending,1\n2,1,mind-bending,2\n2,1,twist,3\n"
        "3,2,\"funny, dark\",4\n")
    return folder


def write_amazon2023(folder: Path, category: str = "All_Beauty", gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    meta = [{"main_category": "All Beauty", "title": f"{t.split(' (')[0]} shampoo",
             "features": ["sulfate free", g.replace("|", " ")], "description": [f"item {m}"],
             "parent_asin": f"P{m:03d}", "rating_number": m, "store": "Acme"}
            for m, t, g in movies()]
    reviews = [{"rating": r, "title": "ok", "text": "fine", "asin": f"A{i}",
                "parent_asin": f"P{i:03d}", "user_id": f"U{u:03d}", "timestamp": t * 1000,
                "helpful_vote": 0, "verified_purchase": True}
               for u, i, r, t in interactions()]
    suffix = ".gz" if gz else ""
    write_jsonl(folder / f"meta_{category}.jsonl{suffix}", meta, gz)
    write_jsonl(folder / f"{category}.jsonl{suffix}", reviews, gz)
    return folder


def write_recbole(folder: Path, name: str = "ml-tiny") -> Path:
    """A whole ``<name>.inter`` plus ``<name>.item``, inside ``folder/<name>/``."""
    sub = folder / name
    sub.mkdir(parents=True, exist_ok=True)
    (sub / f"{name}.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\n" + "".join(
            f"{m}\t{t.split(' (')[0]}\t{t[-5:-1]}\t{g.replace('|', ' ')}\n"
            for m, t, g in movies()))
    (sub / f"{name}.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
            f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in interactions()))
    return folder


DATASETS = {
    "RecQuery-BEIR-v0": (write_beir, {}),
    "RecQuery-ESCI-v0": (write_esci, {}),
    "RecQuery-WANDS-v0": (write_wands, {}),
    "RecQuerySeq-MovieLens-v0": (write_movielens_csv, {}),
    "RecQuerySeq-RecBole-v0": (write_recbole, {"dataset": "ml-tiny"}),
    "RecQuerySeq-Amazon2023-v0": (write_amazon2023, {}),
}
