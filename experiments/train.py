"""Trains one population from a config: `python -m experiments.train --config configs/x.py:arg
--workdir DIR [--data_dir D] [--config.steps=...]`.

Writes DIR/config.json, DIR/metrics.jsonl (one line per evaluation), DIR/results.csv (one row per
member) and orbax checkpoints; rerunning with the same --workdir resumes. A misspelled
`--config.` key, a value the config rejects or a data file that cannot be read ends the run with
one line naming it (exit status 2, or 1 for data), before anything compiles.
"""
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import cli
from experiments import host
from mominit import data
from mominit import distributed
from mominit import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/autoencoder.py:curves.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for metrics, results and checkpoints.")
flags.DEFINE_string("data_dir", None, "Folder with the MNIST / FACES / CURVES files (sets "
                    "--config.data_dir; the RNN problems generate their data).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  host.set_defaults()  # before jax starts a backend
  del argv
  config = FLAGS.config
  if FLAGS.data_dir is not None:
    if "data_dir" in config:
      config.data_dir = FLAGS.data_dir
    else:
      print(f"note: --data_dir is not used by a {config.get('kind', '?')} config (its data are "
            "generated)", file=sys.stderr)
  for note in cli.scale_dependent(config, cli.given_overrides(sys.argv[1:])):
    print(f"note: {note}", file=sys.stderr)
  try:
    if config.get("distributed"):
      distributed.initialize()  # before anything touches a device (docs/distributed.md)
    train.validate_config(config)
  except ValueError as e:
    cli.fail(e)
  try:
    results = train.train_and_evaluate(config, FLAGS.workdir)
  except data.DataError as e:
    cli.fail(e, status=1)
  with_errors = [c for c in results.columns if c not in ("steps", "seconds")]
  print(results[with_errors].to_string(index=False))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_config_flags)
