"""recgym.export and the export / evaluate --run-file commands, checked through ir-measures."""

import io
import json

import gymnasium as gym
import ir_measures
import pytest
from conftest import SMALL
from dataset_fixtures import write_esci, write_movielens_csv
from ir_measures import RR, R, nDCG

from recgym.cli import main
from recgym.datasets import beir
from recgym.export import TrecRunWriter, export_world, gain_scale
from recgym.policies import evaluate, make_policy
from recgym.worlds import load_world

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")


def test_gain_scale():
    assert gain_scale([1.0, 0.1, 0.01, 0.0]) == 100
    assert gain_scale([2, 1, 0]) == 1 and gain_scale([]) == 1
    assert gain_scale([0.5]) == 10 and gain_scale([0.25]) == 100
    with pytest.raises(ValueError, match="not multiples of 1e-6"):
        gain_scale([1 / 3])


def test_trec_run_writer_uses_rank_based_scores():
    buffer = io.StringIO()
    writer = TrecRunWriter(buffer, tag="bm25")
    writer(["q1", "q2"], [["d3", "d1", "d2"], []])
    assert buffer.getvalue().splitlines() == ["q1 Q0 d3 1 3 bm25", "q1 Q0 d1 2 2 bm25",
                                              "q1 Q0 d2 3 1 bm25"]
    with pytest.raises(ValueError, match="contains whitespace"):
        writer(["q 1"], [["d1"]])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The small shop world exported, and its identity-policy run on the test split."""
    out = tmp_path_factory.mktemp("export")
    kwargs = json.dumps(SMALL)
    assert main(["export", "RecQuery-v0", str(out / "beir"), "--kwargs", kwargs]) == 0
    assert main(["evaluate", "RecQuery-v0", "--kwargs", kwargs, "--split", "test", "--json",
                 "--run-file", str(out / "identity.run")]) == 0
    return out


def test_export_writes_a_beir_folder_and_trec_qrels(exported, capsys):
    folder = exported / "beir"
    info = json.loads((folder / "recgym.json").read_text())
    world = load_world("shop", **SMALL["world_kwargs"])
    assert info["gain_scale"] == 100 and info["relevance_level"] == 100
    assert info["env_id"] == "RecQuery-v0" and info["splits"] == world.tasks.sizes()
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    assert [c["_id"] for c in corpus] == world.catalog.ids.tolist()
    assert [f"{c['title']} {c['text']}".strip() for c in corpus] == world.catalog.texts()
    queries = (folder / "queries.jsonl").read_text().splitlines()
    assert len(queries) == len(world.tasks)
    head = (folder / "qrels" / "test.tsv").read_text().splitlines()[:2]
    assert head[0] == "query-id\tcorpus-id\tscore" and len(head[1].split("\t")) == 3
    trec = (folder / "qrels" / "test.trec").read_text().splitlines()[0].split()
    assert len(trec) == 4 and trec[1] == "0" and int(trec[3]) in (0, 1, 10, 100)


def test_ir_measures_reproduces_recgym_metrics_from_the_exported_files(exported):
    """The run recgym wrote, scored by ir-measures against the exported qrels, gives recgym's
    own numbers, task by task."""
    env = gym.make("RecQuery-v0", **SMALL)
    base = env.unwrapped
    rows = base.tasks.split("test")
    _, infos = base.score(rows.tolist(), [base.tasks[r].request for r in rows])
    ours = {base.tasks[r].id: info["metrics"] for r, info in zip(rows, infos, strict=True)}
    qrels = list(ir_measures.read_trec_qrels(str(exported / "beir" / "qrels" / "test.trec")))
    run = list(ir_measures.read_trec_run(str(exported / "identity.run")))
    measures = {"ndcg@10": nDCG @ 10, "ndcg@100": nDCG @ 100, "recall@100": R(rel=100) @ 100,
                "recall@10": R(rel=100) @ 10, "mrr@100": RR(rel=100) @ 100}
    theirs = {(m.query_id, str(m.measure)): m.value
              for m in ir_measures.iter_calc(list(measures.values()), qrels, run)}
    for task_id, metrics in ours.items():
        for name, measure in measures.items():
            assert theirs.get((task_id, str(measure)), 0.0) == pytest.approx(metrics[name],
                                                                             abs=1e-9), name
    assert len({q for q, _ in theirs}) > 0.9 * len(ours)


def test_run_file_equals_what_evaluate_scored(exported):
    env = gym.make("RecQuery-v0", **SMALL)
    rankings = {}
    def record(ids, ranked):
        rankings.update(zip(ids, ranked, strict=True))

    result = evaluate(env, make_policy("identity", env), "test", on_rankings=record)
    lines = (exported / "identity.run").read_text().splitlines()
    from_file = {}
    for line in lines:
        qid, _, doc, rank, score, tag = line.split()
        from_file.setdefault(qid, []).append(doc)
        assert int(rank) == len(from_file[qid])
        assert tag == "recgym" and int(score) > 0
    assert from_file == {k: v for k, v in rankings.items() if v}
    assert all(len(v) <= 100 for v in rankings.values()) and len(rankings) == result["n_tasks"]
    assert env.unwrapped.retriever.__class__.__name__ != "_RecordingRetriever"  # restored


def test_malformed_answers_have_no_run_lines():
    env = gym.make("RecQuery-R1-v0", **SMALL)
    seen = {}
    result = evaluate(env, lambda obs, infos: ["no answer tags"] * len(obs), "test", limit=5,
                      on_rankings=lambda ids, ranked: seen.update(zip(ids, ranked, strict=True)))
    assert result["invalid_rate"] == 1.0 and list(seen.values()) == [[]] * 5


def test_export_round_trips_through_the_beir_loader(tmp_path):
    """Float gains (ESCI) and multi-line requests (MovieLens) survive BEIR files."""
    for writer, world_name in ((write_esci, "esci"), (write_movielens_csv, "movielens")):
        world = load_world(world_name, data_dir=str(writer(tmp_path / world_name)))
        info = export_world(world, tmp_path / f"{world_name}-beir")
        back = beir.load(tmp_path / f"{world_name}-beir")
        assert back.catalog.texts() == world.catalog.texts()
        assert back.catalog.ids.tolist() == world.catalog.ids.tolist()
        for task in world.tasks:
            again = back.tasks[back.tasks.row(task.id)]
            assert again.request == task.request and again.split == task.split
            scaled = {k: v * info["gain_scale"] for k, v in task.judgments.items()}
            assert dict(again.judgments) == pytest.approx(scaled)


def test_export_options_and_errors(tmp_path, capsys):
    kwargs = json.dumps({"world_kwargs": {"data_dir": str(write_movielens_csv(tmp_path / "ml"))}})
    assert main(["export", "RecQuerySeq-MovieLens-v0", str(tmp_path / "out"), "--kwargs", kwargs,
                 "--split", "test"]) == 0
    assert "items, requests" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out" / "qrels").iterdir()) == ["test.trec",
                                                                            "test.tsv"]
    assert main(["export", "RecQuerySeq-MovieLens-v0", str(tmp_path / "o2")]) == 2
    assert "needs data_dir" in capsys.readouterr().err
    assert main(["export", "RecQuery-v1", str(tmp_path / "o3")]) == 2
    assert "Did you mean 'RecQuery-v0'" in capsys.readouterr().err
    world = load_world("shop", **SMALL["world_kwargs"])
    bad = type(world)(name="x", catalog=type(world.catalog)(ids=["a b"], titles=["t"]),
                      tasks=world.tasks)
    with pytest.raises(ValueError, match="item id 'a b' is empty or contains whitespace"):
        export_world(bad, tmp_path / "bad")
