"""Training throughput against the machine's matmul rate and a plain PyTorch loop.

    python -m experiments.benchmark [--quick] [--out benchmark.json]

Measures, in one process and on the default JAX device:

- the machine's matmul rate: a large float32 GEMM through JAX (GFLOP/s, median of repeats);
- autoencoder training (CURVES and MNIST sizes, batch 200, NAG with the paper's momentum schedule)
  through the real engine (``mominit.train.Engine.run_chunk``) for populations of 1, 4 and 16:
  updates/s and achieved GFLOP/s, with the model FLOPs per update of one member counted as
  ``6 x batch x weights`` (forward 2, backward 4 FLOPs per weight and case; biases, non-linearities
  and the optimizer are not counted). The data is synthetic: uniform random pixels with the real
  training-set shape ([20000, 784] and [60000, 784]), which costs the same as the real images;
- RNN training (addition, T=80, batch 100, 100 tanh units) for populations of 1, 8 and 32, with
  ``6 x batch x length x weights`` FLOPs per update (length = the padded sequence length the
  engine computes, 87 for T=80), and that workload's own limit: a ``lax.scan`` doing only the
  RNN's sequential matmuls (forward h W, backward g W^T and h^T g), with no training around them;
- the same two trainings written as a plain PyTorch loop (``torch.optim.SGD(nesterov=True)``
  with the same momentum schedule, ``torch.set_flush_denormal(True)``, all CPU threads), the peer
  a user would otherwise pick; PyTorch is optional (``pip install -e ".[bench]"``), and without it
  those rows say so;
- the compile time of the engine's first chunk;
- PyTorch's own matmul rate (the same GEMM through ``torch.mm``), and for each autoencoder the
  ratio to PyTorch that a loop would reach with every executed matmul at the JAX GEMM rate and
  nothing else (``ceiling_ratio_at_matmul_rate``): the most any engine could show.

The engine runs on the devices ``experiments/`` gives jax: on a CPU one device per core
(``JAX_NUM_CPU_DEVICES``), with each population placed by ``Engine.layout`` (the ``devices``
column); the RNN limit scan is placed the same way.

Every rate is the median of repeats. The repeats of the numbers a row compares (the GEMM, the
engine at each population size, the RNN limit scans and the PyTorch loop of one workload) run
round-robin, so that a burst of load from other processes slows them alike. The benchmark prints
one table and writes every number to JSON with the machine, the library versions, the load
average around each workload, and the date. Timings on a shared machine are only meaningful
when the load average stays below the number of cores: the table shows it.
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any, Optional

import jax
import numpy as np

from experiments import argtypes
from experiments import host
# The workloads and the PyTorch peer live in their own modules; every name stays importable here.
from experiments.bench_torch import (  # pylint: disable=unused-import
    _torch, schedule_table, torch_autoencoder, torch_rnn, torch_timer,
)
from experiments.bench_workloads import (  # pylint: disable=unused-import
    AE_BATCH, RNN_BATCH, RNN_HIDDEN, RNN_T, Timer, _engine_row, _members,
    autoencoder_executed_flops, autoencoder_flops, autoencoder_layers, autoencoder_weights,
    ceiling_ratio, engine_timer, gemm_timer, interleave, meta_gradient_row, meta_gradient_timers,
    rnn_flops, rnn_limit_flops, rnn_limit_fn, rnn_limit_timer, rnn_weights, synthetic_dataset,
    torch_gemm_timer,
)

# Targets of issue 7 (checked and reported, never enforced by the benchmark).
TARGETS = {"autoencoder_fraction_of_matmul": 0.85, "autoencoder_vs_torch": 1.5,
           "rnn_fraction_of_limit": 0.70, "rnn_vs_torch": 2.0}

# Full and quick settings. `chunk` is the number of updates per timed engine call for a
# population of 1; larger populations use chunk / population (at least `min_chunk`).
FULL = {
    "gemm_size": 4096, "repeats": 5,
    "autoencoders": {"curves": (1, 4, 16), "mnist": (1, 4, 16)},
    "ae_train_cases": {"curves": 20_000, "mnist": 60_000},
    "ae_chunk": 100, "rnn_populations": (1, 8, 32), "rnn_chunk": 100, "min_chunk": 5,
    "torch_steps": {"autoencoder": 50, "rnn": 50},
    "meta_gradient": {"inputs": 784, "hidden": 20, "unroll": 20},
}
QUICK = {
    "gemm_size": 512, "repeats": 2,
    "autoencoders": {"curves": (1, 2)},
    "ae_train_cases": {"curves": 1_000, "mnist": 1_000},
    "ae_chunk": 4, "rnn_populations": (1, 2), "rnn_chunk": 4, "min_chunk": 2,
    "torch_steps": {"autoencoder": 3, "rnn": 3},
    "meta_gradient": {"inputs": 49, "hidden": 4, "unroll": 2},
}


# ---------------------------------------------------------------------------------------------
# The benchmark.


def _versions(torch) -> dict:
  import flax  # pylint: disable=import-outside-toplevel
  import jaxlib  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  return {"python": platform.python_version(), "jax": jax.__version__,
          "jaxlib": jaxlib.__version__, "flax": flax.__version__, "optax": optax.__version__,
          "numpy": np.__version__, "torch": torch.__version__ if torch is not None else None}


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _machine() -> dict:
  return {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
          "jax_backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()],
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def _load() -> Optional[list[float]]:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return None


def run(quick: bool = False, log=print) -> dict:
  """Runs every measurement and returns the results (the JSON document) as a dict.

  Args:
    quick: small sizes and few repeats (a smoke test of every code path, seconds long; its
      numbers mean nothing).
    log: called with progress lines.
  """
  from mominit import schedules  # pylint: disable=import-outside-toplevel
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  from mominit import train  # pylint: disable=import-outside-toplevel
  settings = QUICK if quick else FULL
  torch = _torch()
  result: dict[str, Any] = {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "quick": quick, "machine": _machine(), "versions": _versions(torch),
      "load_average": {"before": _load()}, "targets": dict(TARGETS),
      "notes": [
          "Autoencoder data is synthetic (uniform random pixels of the real training-set "
          "shape); training cost does not depend on the pixel values.",
          "Model FLOPs per update: autoencoders 6 x batch x weights, RNN 6 x batch x length x "
          "weights (biases, non-linearities and the optimizer not counted).",
          "updates/s is population updates per second; member-updates/s multiplies it by the "
          "population; GFLOP/s counts every member.",
          "Ratios to PyTorch compare member-updates/s with one PyTorch training loop.",
          "load_average: the 1-, 5- and 15-minute load averages before and after each "
          "measurement; with more runnable processes than cores the timings mean little.",
      ]}
  repeats = settings["repeats"]
  skipped = {"skipped": "PyTorch is not installed (pip install -e \".[bench]\")"}
  log(f"matmul rate: {settings['gemm_size']}^3 float32 GEMM ...")
  gemm = gemm_timer(settings["gemm_size"])
  torch_gemm = torch_gemm_timer(torch, settings["gemm_size"]) if torch is not None else None
  rows, peers, limits = [], {}, {}
  result["flops_per_update"] = {}

  def measure(group, timers, peer):
    """Round-robin repeats of the GEMM, a group's engine timers, its limit timers and its
    PyTorch peer; records the load average around them."""
    log(f"timing {group}: {repeats} interleaved rounds ...")
    load = _load()
    everything = [gemm] + timers + list(limits.get(group, {}).values()) + (
        [peer, torch_gemm] if peer else [])
    interleave(everything, repeats)
    after = _load()
    for timer in timers:
      rows.append({"workload": group, **_engine_row(timer), "load_average": [load, after]})
    peers[group] = skipped if peer is None else {
        "updates_per_s": peer.rate, "steps": peer.info["steps"], "seconds": peer.seconds,
        "load_average": [load, after]}

  for name, populations in settings["autoencoders"].items():
    flops = autoencoder_flops(name)
    result["flops_per_update"][name] = {
        "formula": "6 x batch x weights", "batch": AE_BATCH,
        "weights": autoencoder_weights(name), "layers": autoencoder_layers(name),
        "flops": flops, "executed_flops": autoencoder_executed_flops(name)}
    config = train.default_config("autoencoder")
    config.dataset = name
    data = synthetic_dataset(settings["ae_train_cases"][name])
    timers = []
    for p in populations:
      chunk = max(settings["min_chunk"], settings["ae_chunk"] // p)
      log(f"engine: {name} autoencoder, population {p}, chunks of {chunk} (compiling) ...")
      timers.append(engine_timer(config, p, chunk, data=data))
    peer = None
    if torch is not None:
      steps = settings["torch_steps"]["autoencoder"]
      mu = schedules.final_phase(schedules.sutskever_momentum(0.99, period=250),
                                 config.steps, config.final_steps, config.final_mu)
      peer = torch_timer(torch_autoencoder(
          torch, name, settings["ae_train_cases"][name],
          schedule_table(mu, 3 + steps * repeats))["step"], steps)
    measure(name, timers, peer)
    del timers, data

  config = train.default_config("rnn")
  config.task_kwargs = {"T": RNN_T}
  config.hidden, config.batch_size = RNN_HIDDEN, RNN_BATCH
  task = tasks.make(config.task, center=config.center, T=RNN_T)
  length = task.max_len
  flops = rnn_flops(length, inputs=task.num_inputs, outputs=task.num_outputs)
  result["flops_per_update"]["rnn"] = {
      "formula": "6 x batch x length x weights", "batch": RNN_BATCH, "length": length,
      "weights": rnn_weights(RNN_HIDDEN, task.num_inputs, task.num_outputs), "flops": flops,
      "limit_flops": rnn_limit_flops(length)}
  timers, limits["rnn"] = [], {}
  for p in settings["rnn_populations"]:
    chunk = max(settings["min_chunk"], settings["rnn_chunk"] // p)
    log(f"engine: RNN addition T={RNN_T}, population {p}, chunks of {chunk} (compiling) ...")
    timers.append(engine_timer(config, p, chunk))
    limits["rnn"][p] = rnn_limit_timer(p, length, engine=timers[-1].info["engine"])
  peer = None
  if torch is not None:
    steps = settings["torch_steps"]["rnn"]
    mu = schedules.rnn_momentum(0.995, warm_mu=config.warm_mu, warm_steps=config.warm_steps)
    peer = torch_timer(torch_rnn(torch, task, schedule_table(mu, 3 + steps * repeats))["step"],
                       steps)
  measure("rnn", timers, peer)
  del timers

  mg = settings["meta_gradient"]
  log(f"meta-gradient: RNNprop through {mg['unroll']}-step truncations of a "
      f"{mg['inputs']}-{mg['hidden']}-10 MLP (compiling) ...")
  meta_timer, meta_limit = meta_gradient_timers(**mg)
  load = _load()
  interleave([gemm, meta_timer, meta_limit], repeats)
  meta_load = [load, _load()]

  peak = gemm.rate / 1e9
  result["meta_gradient"] = meta_gradient_row(meta_timer, meta_limit, peak, meta_load)
  result["matmul"] = {"n": gemm.info["n"], "flops": gemm.units, "gflops": peak,
                      "seconds": gemm.seconds}
  if torch_gemm is not None:
    result["torch_matmul"] = {"n": torch_gemm.info["n"], "gflops": torch_gemm.rate / 1e9,
                              "seconds": torch_gemm.seconds}
  result["rnn_limit"] = [{"population": p, "flops": t.units, "gflops": t.rate / 1e9,
                          "layout": t.info["layout"], "seconds": t.seconds}
                         for p, t in limits["rnn"].items()]
  limit_of = {p: t.rate / 1e9 for p, t in limits["rnn"].items()}
  for row in rows:
    row["flops_per_update"] = result["flops_per_update"][row["workload"]]["flops"]
    row["kind"] = "rnn" if row["workload"] == "rnn" else "autoencoder"
    row["gflops"] = row["member_updates_per_s"] * row["flops_per_update"] / 1e9
    row["limit_gflops"] = limit_of[row["population"]] if row["kind"] == "rnn" else peak
  for name, peer in peers.items():
    if "updates_per_s" in peer:
      counts = result["flops_per_update"][name]
      peer["gflops"] = peer["updates_per_s"] * counts["flops"] / 1e9
      if "executed_flops" in counts:
        peer["ceiling_ratio_at_matmul_rate"] = ceiling_ratio(
            gemm.rate, counts["executed_flops"], peer["updates_per_s"])
  result["torch"] = {"available": torch is not None, **peers}
  if torch is not None:
    result["torch"]["threads"] = torch.get_num_threads()

  for row in rows:
    row["fraction_of_matmul"] = row["gflops"] / peak
    row["fraction_of_limit"] = row["gflops"] / row["limit_gflops"]
    peer = result["torch"][row["workload"]]
    row["torch_ratio"] = (row["member_updates_per_s"] / peer["updates_per_s"]
                          if "updates_per_s" in peer else None)
  result["rows"] = rows
  result["checks"] = _checks(rows, result["torch"]["available"])
  result["load_average"]["after"] = _load()
  return result


def _checks(rows, have_torch: bool) -> dict:
  """The issue's targets against the measured rows (True / False / None = not measurable)."""
  by = {(r["workload"], r["population"]): r for r in rows}
  out = {}
  for name in ("curves", "mnist"):
    r = by.get((name, 1))
    if r is not None:
      out[f"{name}_p1_fraction_of_matmul>=0.85"] = r["fraction_of_matmul"] >= 0.85
      out[f"{name}_p1_vs_torch>=1.5"] = (r["torch_ratio"] >= 1.5 if have_torch else None)
  rnn = sorted((r for r in rows if r["workload"] == "rnn"), key=lambda r: r["population"])
  if rnn:
    one, big = rnn[0], rnn[-1]
    out["rnn_p1_fraction_of_limit>=0.70"] = one["fraction_of_limit"] >= 0.70
    out["rnn_p1_vs_torch>=2"] = one["torch_ratio"] >= 2.0 if have_torch else None
    out[f"rnn_p{big['population']}_per_member>=p1"] = (
        big["member_updates_per_s"] / big["population"] >= one["member_updates_per_s"])
  return out


def _load_text(pair) -> str:
  """The larger 1-minute load average of a measurement's start and end, as text."""
  if not pair or None in pair:
    return "?"
  return f"{max(p[0] for p in pair):.1f}"


def table(result: dict) -> str:
  """The results as one fixed-width text table."""
  head = (f"{'workload':10s} {'pop':>4s} {'devices':>9s} {'updates/s':>10s} {'member-upd/s':>12s} "
          f"{'GFLOP/s':>8s} {'of matmul':>9s} {'of limit':>8s} {'vs PyTorch':>10s} "
          f"{'compile s':>9s} {'load':>5s}")
  lines = [head, "-" * len(head)]
  for r in result["rows"]:
    ratio = "n/a" if r["torch_ratio"] is None else f"{r['torch_ratio']:.2f}x"
    limit = "" if r["kind"] == "autoencoder" else f"{100 * r['fraction_of_limit']:.0f}%"
    placed = "1" if r["layout"] == "single" else f"{r['devices']} {r['layout'][:5]}"
    lines.append(
        f"{r['workload']:10s} {r['population']:4d} {placed:>9s} {r['steps_per_s']:10.1f} "
        f"{r['member_updates_per_s']:12.1f} {r['gflops']:8.1f} "
        f"{100 * r['fraction_of_matmul']:8.0f}% {limit:>8s} {ratio:>10s} {r['compile_s']:9.1f} "
        f"{_load_text(r.get('load_average')):>5s}")
  for name, t in result["torch"].items():
    if not isinstance(t, dict):
      continue
    if "skipped" in t:
      lines.append(f"{'torch ' + name:15s} skipped: {t['skipped']}")
    else:
      ceiling = t.get("ceiling_ratio_at_matmul_rate")
      ceiling = "" if ceiling is None else (
          f"   (every matmul at the JAX GEMM rate, nothing else: {ceiling:.2f}x)")
      lines.append(f"{'torch ' + name:15s} {t['updates_per_s']:10.1f} updates/s "
                   f"{t['gflops']:8.1f} GFLOP/s   load {_load_text(t.get('load_average'))}"
                   f"{ceiling}")
  m = result["matmul"]
  lines.append(f"matmul rate: {m['gflops']:.1f} GFLOP/s ({m['n']}^3 float32 GEMM, median)")
  if "torch_matmul" in result:
    lines.append(f"PyTorch's matmul rate: {result['torch_matmul']['gflops']:.1f} GFLOP/s "
                 f"(the same GEMM through torch.mm)")
  m = result.get("meta_gradient")
  if m:
    lines.append(f"meta-gradient ({m['problem']}, unroll {m['unroll']}): "
                 f"{m['inner_steps_per_s']:.1f} inner steps/s, {m['gflops']:.1f} GFLOP/s = "
                 f"{100 * m['fraction_of_limit']:.0f}% of its own matmul limit "
                 f"({m['limit_gflops']:.1f} GFLOP/s), compile {m['compile_s']:.1f} s, "
                 f"load {_load_text(m['load_average'])}")
  for limit in result["rnn_limit"]:
    lines.append(f"RNN limit (matmul scan), population {limit['population']} "
                 f"({limit['layout']}): {limit['gflops']:.1f} GFLOP/s")
  for name, f in result["flops_per_update"].items():
    lines.append(f"FLOPs/update {name}: {f['flops']:,} = {f['formula']} "
                 f"({f['weights']:,} weights)")
  lines.append(f"load average before {result['load_average']['before']}, "
               f"after {result['load_average']['after']}; {result['machine']['cpu']}, "
               f"{result['machine']['cpu_count']} CPUs")
  return "\n".join(lines)


def main(argv=None) -> dict:
  """Command-line entry point; returns the results dict."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="small sizes, few repeats: checks that everything runs")
  parser.add_argument("--out", default="benchmark.json", type=argtypes.output_file,
                      help="JSON output path")
  args = parser.parse_args(argv)
  t0 = time.perf_counter()
  result = run(quick=args.quick, log=lambda s: print(s, file=sys.stderr, flush=True))
  result["wall_s"] = time.perf_counter() - t0
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1, default=float) + "\n")
  print(table(result))
  print(f"wrote {out}")
  return result


if __name__ == "__main__":
  main()
