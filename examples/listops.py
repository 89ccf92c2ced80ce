"""Short ListOps (LRA grammar): spiking SSM classifier vs its conventional twin vs the majority class.

    OMP_NUM_THREADS=1 .venv/bin/python examples/listops.py
"""

from neurotoken.experiments.listops import ListOpsShort, run_listops

config = ListOpsShort()
print(f"ListOps: depth <= {config.max_depth}, <= {config.max_args} arguments, {config.min_length}-{config.max_length} "
      f"tokens, {config.n_train} train / {config.n_test} test expressions, 10 classes")
rows = run_listops(config, on_result=lambda r: print(f"  done: {r['model']}", flush=True)).tables["rows"]
print(f"\n{'model':<16}{'test accuracy':>15}{'final loss':>12}{'train s':>9}")
for r in rows:
    loss = "-" if r["final_loss"] is None else f"{r['final_loss']:.3f}"
    seconds = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
    print(f"{r['model']:<16}{r['test_accuracy']:>15.3f}{loss:>12}{seconds:>9}")
