"""recgym.metrics: hand arithmetic, trec_eval parity (pytrec_eval, ir-measures), properties.

pytrec_eval quirks handled below (checked against pytrec_eval-terrier 0.5):

* A query whose qrels entry is empty is dropped from pytrec_eval's output; a query with judgments
  but none relevant (all label 0, or all below ``relevance_level``) is reported with every measure
  0. recgym scores both as 0, so a query missing from pytrec_eval's output is expected to be 0.
* A query absent from the run is dropped too, so every query is passed with a (possibly empty) run.
* pytrec_eval's ``recip_rank`` has no cutoff: RR@k is checked by truncating the run to its top k
  (in trec_eval order) before evaluating. ir-measures' ``RR@k`` is served by its msmarco provider,
  which breaks score ties by doc id *ascending*, unlike trec_eval, so it is compared on tie-free
  runs only.
* ``ndcg_cut`` ignores ``relevance_level``: every positive gain counts at every level.
"""

from __future__ import annotations

import math

import ir_measures
import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from recgym import metrics
from recgym.metrics import (
    METRICS,
    average_precision,
    compute,
    hit,
    mrr,
    ndcg,
    parse_metric,
    precision,
    recall,
    trec_order,
)

# --------------------------------------------------------------------------------------------------
# Hand arithmetic
# --------------------------------------------------------------------------------------------------

# Row 0: judged {3, 2, 1, 1} (one gain-1 item never retrieved); ranking gains 3, 0, 1, 2, 0.
# Row 1: judged {2, 1}; ranking gains 0, 0, 2, 0, 1.
# Row 2: judged items all 0 (nothing relevant); ranking gains 0, 0, 0 and two empty slots.
GAINS = np.array([[3, 0, 1, 2, 0], [0, 0, 2, 0, 1], [0, 0, 0, 0, 0]], dtype=np.float64)
IDEAL = np.array([[3, 2, 1, 1], [2, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float64)
N_REL = np.array([4, 2, 0])  # gains >= 1
N_REL_2 = np.array([2, 1, 0])  # gains >= 2
L2 = math.log2


def test_ndcg_hand():
    # Row 0: DCG@5 = 3/log2(2) + 0/log2(3) + 1/log2(4) + 2/log2(5) + 0/log2(6) = 3 + 1/2 + 2/log2(5)
    #        IDCG@5 = 3/log2(2) + 2/log2(3) + 1/log2(4) + 1/log2(5)
    # Row 1: DCG@5 = 2/log2(4) + 1/log2(6);  IDCG@5 = 2/log2(2) + 1/log2(3)
    # Row 2: IDCG = 0 -> 0.
    expected = [
        (3 + 1 / 2 + 2 / L2(5)) / (3 + 2 / L2(3) + 1 / 2 + 1 / L2(5)),
        (2 / 2 + 1 / L2(6)) / (2 + 1 / L2(3)),
        0.0,
    ]
    np.testing.assert_allclose(ndcg(GAINS, IDEAL, 5), expected, rtol=0, atol=1e-12)
    # @2: row 0 DCG = 3, IDCG = 3 + 2/log2(3); row 1 DCG = 0.
    np.testing.assert_allclose(ndcg(GAINS, IDEAL, 2), [3 / (3 + 2 / L2(3)), 0, 0], atol=1e-12)
    # @1 of row 0: 3/3.
    assert ndcg(GAINS, IDEAL, 1)[0] == 1.0


def test_precision_hand():
    # Relevant (gain >= 1) in the top 5: row 0 ranks 1, 3, 4 -> 3/5; row 1 ranks 3, 5 -> 2/5.
    np.testing.assert_allclose(precision(GAINS, 5), [3 / 5, 2 / 5, 0])
    # P@10 still divides by 10 although only 5 slots exist (trec_eval P_10).
    np.testing.assert_allclose(precision(GAINS, 10), [3 / 10, 2 / 10, 0])
    # rel_level 2: row 0 ranks 1, 4 -> 2/5; row 1 rank 3 -> 1/5.
    np.testing.assert_allclose(precision(GAINS, 5, rel_level=2), [2 / 5, 1 / 5, 0])


def test_recall_hand():
    # Row 0: 3 of 4 relevant in the top 5 (one never retrieved); row 1: 2 of 2; row 2: no relevant.
    np.testing.assert_allclose(recall(GAINS, N_REL, 5), [3 / 4, 1, 0])
    # @2: row 0 rank 1 only -> 1/4; row 1 none -> 0.
    np.testing.assert_allclose(recall(GAINS, N_REL, 2), [1 / 4, 0, 0])
    # rel_level 2: row 0 ranks 1, 4 of 2 -> 1; row 1 rank 3 of 1 -> 1.
    np.testing.assert_allclose(recall(GAINS, N_REL_2, 5, rel_level=2), [1, 1, 0])


def test_mrr_hand():
    # First relevant: row 0 rank 1 -> 1; row 1 rank 3 -> 1/3; row 2 none -> 0.
    np.testing.assert_allclose(mrr(GAINS, 5), [1, 1 / 3, 0])
    # Cut at 2: row 1's first relevant (rank 3) is outside the cutoff.
    np.testing.assert_allclose(mrr(GAINS, 2), [1, 0, 0])
    # rel_level 3: row 0 rank 1; row 1 has no gain >= 3.
    np.testing.assert_allclose(mrr(GAINS, 5, rel_level=3), [1, 0, 0])


def test_hit_hand():
    np.testing.assert_array_equal(hit(GAINS, 5), [1, 1, 0])
    np.testing.assert_array_equal(hit(GAINS, 2), [1, 0, 0])
    np.testing.assert_array_equal(hit(GAINS, 1, rel_level=3), [1, 0, 0])


def test_average_precision_hand():
    # Row 0: relevant at ranks 1, 3, 4 -> (1/1 + 2/3 + 3/4) / 4 (4 relevant judged in all).
    # Row 1: relevant at ranks 3, 5 -> (1/3 + 2/5) / 2.
    expected = [(1 + 2 / 3 + 3 / 4) / 4, (1 / 3 + 2 / 5) / 2, 0]
    np.testing.assert_allclose(average_precision(GAINS, N_REL, 5), expected, atol=1e-12)
    # Cut at 3: row 0 (1 + 2/3) / 4; row 1 (1/3) / 2.
    expected = [(1 + 2 / 3) / 4, (1 / 3) / 2, 0]
    np.testing.assert_allclose(average_precision(GAINS, N_REL, 3), expected, atol=1e-12)
    # rel_level 2: row 0 ranks 1, 4 -> (1/1 + 2/4) / 2; row 1 rank 3 -> (1/3) / 1.
    expected = [(1 + 2 / 4) / 2, 1 / 3, 0]
    np.testing.assert_allclose(
        average_precision(GAINS, N_REL_2, 5, rel_level=2), expected, atol=1e-12
    )


def test_results_are_float64_and_shaped():
    for name in ("precision", "mrr", "hit"):
        out = METRICS[name](GAINS.astype(np.int32), 3)
        assert out.dtype == np.float64 and out.shape == (3,)
    assert ndcg(np.zeros((0, 4)), np.zeros((0, 2)), 3).shape == (0,)
    # A batch of rankings with no columns at all: every slot is empty.
    np.testing.assert_array_equal(mrr(np.zeros((2, 0)), 5), [0, 0])
    np.testing.assert_array_equal(ndcg(np.zeros((2, 0)), [[1.0], [0.0]], 5), [0, 0])


# --------------------------------------------------------------------------------------------------
# compute and parse_metric
# --------------------------------------------------------------------------------------------------


def test_metrics_registry():
    assert set(METRICS) == {"ndcg", "recall", "precision", "mrr", "hit", "map"}
    assert METRICS["map"] is average_precision


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ndcg@10", ("ndcg", 10)),
        ("NDCG@10", ("ndcg", 10)),
        (" Recall @ 5 ", ("recall", 5)),
        ("map@100", ("map", 100)),
        ("MRR@1", ("mrr", 1)),
        ("hit@007", ("hit", 7)),
    ],
)
def test_parse_metric(spec, expected):
    assert parse_metric(spec) == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (
            "ndcgg@10",
            r"unknown metric 'ndcgg'; valid metrics: hit, map, mrr, ndcg.*Did you mean 'ndcg'",
        ),
        ("P@10", r"unknown metric 'p'; valid metrics"),
        ("", r"unknown metric ''"),
        ("ndcg", r"needs a cutoff"),
        ("ndcg@", r"needs a cutoff"),
        ("ndcg@0", r"positive integer"),
        ("ndcg@-1", r"positive integer"),
        ("ndcg@1.5", r"positive integer"),
        ("ndcg@ten", r"positive integer"),
        ("ndcg@10@5", r"positive integer"),
    ],
)
def test_parse_metric_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_metric(spec)


def test_parse_metric_type_error():
    with pytest.raises(TypeError, match="string"):
        parse_metric(10)  # type: ignore[arg-type]


def test_compute_matches_functions_and_pads():
    specs = ["NDCG@10", "recall@2", "precision@10", "mrr@3", "hit@2", "map@5", "ndcg@10"]
    out = compute(specs, GAINS, IDEAL, N_REL)
    # Canonical keys, in request order, duplicates once.
    assert list(out) == ["ndcg@10", "recall@2", "precision@10", "mrr@3", "hit@2", "map@5"]
    np.testing.assert_array_equal(out["ndcg@10"], ndcg(GAINS, IDEAL, 10))
    np.testing.assert_array_equal(out["recall@2"], recall(GAINS, N_REL, 2))
    np.testing.assert_array_equal(out["precision@10"], precision(GAINS, 10))
    np.testing.assert_array_equal(out["mrr@3"], mrr(GAINS, 3))
    np.testing.assert_array_equal(out["hit@2"], hit(GAINS, 2))
    np.testing.assert_array_equal(out["map@5"], average_precision(GAINS, N_REL, 5))
    # gains narrower than the largest cutoff behaves exactly like explicit zero padding.
    padded = compute(specs, np.pad(GAINS, ((0, 0), (0, 5))), np.pad(IDEAL, ((0, 0), (0, 6))), N_REL)
    for key, value in out.items():
        np.testing.assert_array_equal(value, padded[key], err_msg=key)
    # rel_level flows through; a single spec string is accepted.
    np.testing.assert_array_equal(
        compute("map@5", GAINS, IDEAL, N_REL_2, rel_level=2)["map@5"],
        average_precision(GAINS, N_REL_2, 5, rel_level=2),
    )
    assert compute([], GAINS, IDEAL, N_REL) == {}


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: precision(GAINS, 0), ValueError, r"k must be >= 1"),
        (lambda: precision(GAINS, -3), ValueError, r"k must be >= 1"),
        (lambda: precision(GAINS, 2.0), TypeError, r"k must be an integer"),
        (lambda: precision(GAINS, True), TypeError, r"k must be an integer"),
        (lambda: precision(GAINS[0], 2), ValueError, r"gains must be 2-D"),
        (lambda: precision([[0.0, np.nan]], 2), ValueError, r"gains must be finite"),
        (lambda: precision([[0.0, np.inf]], 2), ValueError, r"gains must be finite"),
        (lambda: precision([[0.0, -1.0]], 2), ValueError, r"gains must be >= 0"),
        (lambda: precision([["a"]], 2), TypeError, r"real numeric"),
        (lambda: precision(GAINS, 2, rel_level=0), ValueError, r"rel_level must be finite and > 0"),
        (lambda: precision(GAINS, 2, rel_level=np.nan), ValueError, r"rel_level"),
        (lambda: precision(GAINS, 2, rel_level="1"), TypeError, r"rel_level"),
        (lambda: ndcg(GAINS, IDEAL[:2], 2), ValueError, r"ideal has 2 rows but gains has 3"),
        (lambda: ndcg(GAINS, IDEAL[:, ::-1], 2), ValueError, r"sorted in descending order"),
        (lambda: ndcg(GAINS, IDEAL[:, 0], 2), ValueError, r"ideal must be 2-D"),
        (lambda: recall(GAINS, N_REL[:2], 2), ValueError, r"n_relevant must have shape \(3,\)"),
        (lambda: recall(GAINS, [4, 2, -1], 2), ValueError, r"n_relevant must be >= 0"),
        (lambda: recall(GAINS, [4.5, 2, 0], 2), TypeError, r"n_relevant must hold integers"),
        (lambda: recall(GAINS, [2, 2, 0], 2), ValueError, r"n_relevant\[0\] = 2 but ranking 0"),
        (lambda: compute(["ndcg@0"], GAINS, IDEAL, N_REL), ValueError, r"positive integer"),
        (lambda: compute(["ndcg@3"], [[np.nan]], IDEAL, N_REL), ValueError, r"finite"),
    ],
)
def test_validation_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_trec_order_validation():
    with pytest.raises(ValueError, match=r"unique.*'a' repeats"):
        trec_order(["a", "b", "a"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        trec_order(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        trec_order(["a", "b"], [1.0, np.nan])
    with pytest.raises(ValueError, match="NUL"):
        trec_order(["a", "a\x00"], [1.0, 1.0])
    assert trec_order([], np.zeros(0)).shape == (0,)


# --------------------------------------------------------------------------------------------------
# trec_order: trec_eval's ranking of a scored run
# --------------------------------------------------------------------------------------------------


def test_trec_order_examples():
    ids = ["a", "b", "c", "d"]
    # Score descending first: c (3), then a/b/d tied at 1 -> id descending: d, b, a.
    np.testing.assert_array_equal(trec_order(ids, np.array([1.0, 1.0, 3.0, 1.0])), [2, 3, 1, 0])
    # strcmp order, reversed: "9" > "10", "ab" > "a", "a" > "B" (0x61 > 0x42), "é" > "z" (UTF-8).
    for first, second in [("9", "10"), ("ab", "a"), ("a", "B"), ("é", "z"), ("b", "a")]:
        # Given in ascending order, the tied pair comes back swapped: [second, first] -> [1, 0].
        np.testing.assert_array_equal(trec_order([second, first], [0.5, 0.5]), [1, 0])
    # 0.0 and -0.0 tie; -inf ranks last.
    np.testing.assert_array_equal(trec_order(["a", "b", "c"], [0.0, -np.inf, -0.0]), [2, 0, 1])


def test_trec_order_matches_pytrec_eval_ties():
    # One tied block with awkward ids plus a higher and a lower score. Making each document in
    # turn the only relevant one, pytrec_eval's reciprocal rank reveals its trec_eval rank.
    ids = ["b", "a", "9", "10", "ab", "B", "é", "z", "doc-1", "doc_1", "Doc1", "top", "low"]
    scores = np.array([2.0] * 11 + [5.0, -1.0])
    order = [ids[i] for i in trec_order(ids, scores)]
    run = {"q": dict(zip(ids, scores.tolist(), strict=True))}
    for doc in ids:
        evaluator = pytrec_eval.RelevanceEvaluator({"q": {doc: 1}}, {"recip_rank"})
        rr = evaluator.evaluate(run)["q"]["recip_rank"]
        assert rr == pytest.approx(1 / (order.index(doc) + 1), abs=1e-12), doc


# --------------------------------------------------------------------------------------------------
# Randomised parity with pytrec_eval
# --------------------------------------------------------------------------------------------------

# Ids whose strcmp order differs from numeric / case-insensitive / insertion order.
VOCAB = [f"d{i}" for i in range(150)] + [f"D{i}" for i in range(30)] + ["é1", "z", "a", "ab", "B"]

PYTREC_MEASURES = {
    "ndcg_cut.10,100",
    "recall.10,100",
    "P.10,100",
    "map_cut.10,100",
    "success.1,10,100",
}
SPEC_TO_TREC = {
    "ndcg@10": "ndcg_cut_10",
    "ndcg@100": "ndcg_cut_100",
    "recall@10": "recall_10",
    "recall@100": "recall_100",
    "precision@10": "P_10",
    "precision@100": "P_100",
    "map@10": "map_cut_10",
    "map@100": "map_cut_100",
    "hit@1": "success_1",
    "hit@10": "success_10",
    "hit@100": "success_100",
}
RR_CUTOFFS = (1, 10, 100)


def _random_collection(seed: int, n_queries: int, max_retrieved: int, tie_free: bool = False):
    """Random graded qrels (labels 0-3) and scored runs with every edge case represented."""
    rng = np.random.default_rng(seed)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        kind = rng.random()
        n_judged = 0 if kind < 0.05 else int(rng.integers(1, 40))
        judged = rng.choice(len(VOCAB), size=n_judged, replace=False)
        labels = rng.integers(0, 4, size=n_judged)
        if 0.05 <= kind < 0.12:
            labels[:] = 0  # judged, but nothing relevant
        qrels[qid] = {VOCAB[d]: int(g) for d, g in zip(judged, labels, strict=True)}
        n_ret = 0 if rng.random() < 0.05 else int(rng.integers(0, max_retrieved + 1))
        # Draw retrieved docs from the judged ones and the rest, so that some retrieved docs are
        # unjudged and some judged docs are never retrieved.
        retrieved = rng.choice(len(VOCAB), size=n_ret, replace=False)
        if tie_free:
            scores = rng.permutation(n_ret) + rng.random(n_ret) * 0.5
        else:
            mode = rng.integers(3)
            if mode == 0:
                scores = rng.integers(0, 4, size=n_ret).astype(float)  # heavy ties
            elif mode == 1:
                scores = np.round(rng.normal(size=n_ret), 1)  # some ties
            else:
                scores = rng.normal(size=n_ret) * 10
        run[qid] = {VOCAB[d]: float(s) for d, s in zip(retrieved, scores, strict=True)}
    return qrels, run


def _inputs(qrels, run, rel_level: float):
    """(qids, gains, ideal, n_relevant, ranked ids) from plain dicts, ranked with trec_order."""
    qids = list(run)
    ranked = []
    for qid in qids:
        docs = list(run[qid])
        scores = np.array([run[qid][d] for d in docs], dtype=np.float64)
        ranked.append([docs[i] for i in trec_order(docs, scores)])
    depth = max((len(r) for r in ranked), default=0)
    width = max([sum(g > 0 for g in qrels[q].values()) for q in qids] + [1])
    gains = np.zeros((len(qids), depth))
    ideal = np.zeros((len(qids), width))
    n_relevant = np.zeros(len(qids), dtype=np.int64)
    for row, (qid, docs) in enumerate(zip(qids, ranked, strict=True)):
        judged = qrels[qid]
        gains[row, : len(docs)] = [judged.get(d, 0) for d in docs]
        positive = sorted((g for g in judged.values() if g > 0), reverse=True)
        ideal[row, : len(positive)] = positive
        n_relevant[row] = sum(g >= rel_level for g in judged.values())
    return qids, gains, ideal, n_relevant, ranked


def _pytrec(qrels, run, measures, rel_level: int, qids) -> dict[str, dict[str, float]]:
    """pytrec_eval's results, with the queries it drops (empty qrels) filled in as 0."""
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=rel_level)
    results = evaluator.evaluate(run)
    # The documented quirk, asserted: exactly the queries with no judgments at all are dropped.
    assert set(results) == {q for q in qids if qrels[q]}
    return {q: results.get(q, {}) for q in qids}


def _check_against_pytrec(qrels, run, rel_level: int) -> int:
    qids, gains, ideal, n_relevant, ranked = _inputs(qrels, run, rel_level)
    specs = [*SPEC_TO_TREC, *(f"mrr@{k}" for k in RR_CUTOFFS)]
    ours = compute(specs, gains, ideal, n_relevant, rel_level=rel_level)
    # Unchecked (as the env calls it on its own tables): the same values, bit for bit.
    unchecked = compute(specs, gains, ideal, n_relevant, rel_level=rel_level, validate=False)
    for spec in specs:
        np.testing.assert_array_equal(unchecked[spec], ours[spec], err_msg=spec)
    if len(qids) and n_relevant.max() > 0:  # n_relevant is checked even then
        with pytest.raises(ValueError, match="n_relevant must count every relevant"):
            compute(specs, gains, ideal, n_relevant * 0, rel_level=rel_level, validate=False)
    theirs = _pytrec(qrels, run, PYTREC_MEASURES, rel_level, qids)
    for spec, measure in SPEC_TO_TREC.items():
        expected = [theirs[q].get(measure, 0.0) for q in qids]
        np.testing.assert_allclose(ours[spec], expected, rtol=0, atol=1e-9, err_msg=spec)
    # RR@k: pytrec_eval's recip_rank has no cutoff, so evaluate the run truncated to its top k.
    for k in RR_CUTOFFS:
        truncated = {
            q: {d: run[q][d] for d in docs[:k]} for q, docs in zip(qids, ranked, strict=True)
        }
        rr = _pytrec(qrels, truncated, {"recip_rank"}, rel_level, qids)
        expected = [rr[q].get("recip_rank", 0.0) for q in qids]
        np.testing.assert_allclose(ours[f"mrr@{k}"], expected, rtol=0, atol=1e-9, err_msg=f"RR@{k}")
    return len(qids)


@pytest.mark.parametrize(("seed", "max_retrieved"), [(0, 150), (1, 8), (2, 40)])
def test_random_against_pytrec_eval(seed, max_retrieved):
    qrels, run = _random_collection(seed, 200, max_retrieved)
    assert _check_against_pytrec(qrels, run, rel_level=1) == 200


def test_random_rel_level_2_against_pytrec_eval():
    qrels, run = _random_collection(3, 200, 60)
    _check_against_pytrec(qrels, run, rel_level=2)


def test_random_collection_covers_edge_cases():
    # Guard: the generator really produces the cases the parity tests claim to cover.
    qrels, run = _random_collection(0, 200, 150)
    qids, gains, _, n_relevant, ranked = _inputs(qrels, run, 1)
    lengths = np.array([len(r) for r in ranked])
    assert (lengths == 0).any()  # empty rankings
    assert ((lengths > 0) & (lengths < 10)).any()  # rankings shorter than k
    assert (lengths > 100).any()  # rankings cut at 100
    assert any(not qrels[q] for q in qids)  # no judgments at all (dropped by pytrec_eval)
    # Judged, but nothing relevant.
    assert any(qrels[q] and not n for q, n in zip(qids, n_relevant, strict=True))
    assert any(set(run[q]) - set(qrels[q]) for q in qids)  # unjudged retrieved docs
    assert any(set(qrels[q]) - set(run[q]) for q in qids)  # judged docs never retrieved
    assert any(len(set(run[q].values())) < len(run[q]) for q in qids)  # tied scores
    assert (gains[:, :10] >= 1).any(axis=1).mean() > 0.3  # plenty of hits to get right


def test_random_against_ir_measures():
    # ir-measures on tie-free runs (its RR@k provider breaks ties differently from trec_eval).
    qrels, run = _random_collection(4, 120, 60, tie_free=True)
    qids, gains, ideal, n_relevant, _ = _inputs(qrels, run, 1)
    pairs = {
        "nDCG@10": "ndcg@10",
        "R@100": "recall@100",
        "P@10": "precision@10",
        "AP@100": "map@100",
        "RR@10": "mrr@10",
        "Success@10": "hit@10",
    }
    ours = compute(list(pairs.values()), gains, ideal, n_relevant)
    measures = [ir_measures.parse_measure(m) for m in pairs]
    theirs: dict[tuple[str, str], float] = {}
    for metric in ir_measures.iter_calc(measures, qrels, run):
        theirs[(str(metric.measure), metric.query_id)] = metric.value
    for name, spec in pairs.items():
        expected = [theirs.get((name, q), 0.0) for q in qids]
        # Only queries without any judgment may be missing from ir-measures' output.
        missing = {q for q in qids if (name, q) not in theirs}
        assert missing <= {q for q in qids if not qrels[q]}, name
        np.testing.assert_allclose(ours[spec], expected, rtol=0, atol=1e-9, err_msg=name)


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

GAIN_VALUES = st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])


@st.composite
def _batches(draw):
    n = draw(st.integers(1, 4))
    depth = draw(st.integers(0, 12))
    rows = [draw(st.lists(GAIN_VALUES, min_size=depth, max_size=depth)) for _ in range(n)]
    extra = [draw(st.lists(GAIN_VALUES, max_size=6)) for _ in range(n)]  # judged, not retrieved
    rel_level = draw(st.sampled_from([0.5, 1.0, 2.0, 2.5]))
    k = draw(st.integers(1, 15))
    judged = [[g for g in r + e if g > 0] for r, e in zip(rows, extra, strict=True)]
    width = max([len(j) for j in judged] + [1])
    ideal = np.zeros((n, width))
    for i, j in enumerate(judged):
        ideal[i, : len(j)] = sorted(j, reverse=True)
    n_relevant = np.array([sum(g >= rel_level for g in j) for j in judged])
    return np.array(rows, dtype=np.float64).reshape(n, depth), ideal, n_relevant, rel_level, k


@settings(max_examples=150, deadline=None)
@given(_batches())
def test_metric_properties(batch):
    gains, ideal, n_relevant, rel_level, k = batch
    out = compute([f"{name}@{k}" for name in METRICS], gains, ideal, n_relevant, rel_level)
    for key, value in out.items():
        assert value.shape == (gains.shape[0],) and value.dtype == np.float64, key
        assert ((value >= 0) & (value <= 1 + 1e-12)).all(), (key, value)
    # The ideal ranking is perfect: nDCG 1 wherever any positive gain is judged, else 0.
    np.testing.assert_allclose(ndcg(ideal, ideal, k), (ideal[:, 0] > 0).astype(float), atol=1e-12)
    # Recall and hit never decrease as the cutoff grows.
    assert (recall(gains, n_relevant, k + 1, rel_level) >= out[f"recall@{k}"]).all()
    assert (hit(gains, k + 1, rel_level) >= out[f"hit@{k}"]).all()


def test_module_exports():
    assert set(metrics.__all__) >= {"METRICS", "compute", "parse_metric", "trec_order"}
