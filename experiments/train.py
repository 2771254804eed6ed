"""Trains one population from a config: `python -m experiments.train --config configs/x.py:arg
--workdir DIR [--config.steps=...]`.

Writes DIR/config.json, DIR/metrics.jsonl (one line per evaluation), DIR/results.csv (one row per
member) and orbax checkpoints; rerunning with the same --workdir resumes.
"""
from absl import app
from absl import flags
from ml_collections import config_flags

from mominit import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/autoencoder.py:curves.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for metrics, results and checkpoints.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  with_errors = [c for c in results.columns if c not in ("steps", "seconds")]
  print(results[with_errors].to_string(index=False))


if __name__ == "__main__":
  app.run(main)
