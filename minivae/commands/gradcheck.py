"""Check every op's backward against finite differences and print the errors.

Runs the gradient check of each differentiable op of minivae.functional on small random float64 inputs
(drawn from --seed; the same inputs whether an op runs alone or with the others) and prints a table:
op, settings, input shapes, the largest absolute and relative error between backward and central
finite differences, pass or FAIL. An entry passes when abs(analytic - numeric) <= atol + rtol * abs(numeric)
everywhere and two backward passes agree bitwise. The exit status is 1 when any check fails.

Full mode compares whole Jacobians; --fast compares random projections v.J.u instead (as PyTorch's
fast mode). --order 2 checks second derivatives (the backward of each backward, as PyTorch's gradgradcheck);
--mode forward checks the forward-mode JVP rules; --mutants injects known bugs into the rules and prints
which checks catch them. --kernels picks the CPU kernel implementation the ops run on (reference or numba). The same
check is available in Python for your own ops: minivae.opcheck.check_op.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--op", action="append", default=None, metavar="NAME",
                        help="check only this op (repeatable), e.g. --op conv2d; see --list (default: every op)")
    parser.add_argument("--list", action="store_true", help="list the ops and their settings, and exit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs and projections")
    parser.add_argument("--fast", action="store_true", help="compare random projections instead of full Jacobians")
    parser.add_argument("--order", type=int, choices=(1, 2), default=1,
                        help="1: first derivatives (VJPs); 2: second derivatives (gradgradcheck: the backward of "
                             "every op's backward against finite differences of the first)")
    parser.add_argument("--mode", choices=("reverse", "forward"), default="reverse",
                        help="reverse: check the VJPs (backward); forward: check the JVPs (forward mode) and, "
                             "with --fast, the adjoint identity <v, Ju> = <J^T v, u>")
    parser.add_argument("--mutants", action="store_true",
                        help="inject known bugs into backward and JVP rules and print which checks catch each")
    parser.add_argument("--directions", type=int, default=4,
                        help="random directions per input with --fast")
    parser.add_argument("--kernels", default=None, metavar="IMPL",
                        help="CPU kernel implementation to check: reference or numba (default: the current one)")
    parser.add_argument("--eps", type=float, default=1e-6, help="finite-difference step")
    parser.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance")
    parser.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance")
    parser.add_argument("-v", "--verbose", action="store_true", help="print a line per op as it is checked")


def run(args: argparse.Namespace) -> int:
    from minivae import kernels, opcheck

    if args.mutants:
        from minivae import mutants

        results = mutants.run_all(seed=args.seed)
        print(mutants.format_table(results))
        missed = [r for r in results if not r.caught["full"]]
        print(f"{len(results)} mutants; full-Jacobian checks caught {len(results) - len(missed)}")
        return 1 if missed else 0
    if args.order == 2 and args.mode == "forward":
        print("minivae gradcheck: error: --order 2 checks reverse mode; use --mode forward with --order 1",
              file=sys.stderr)
        return 2
    if args.list:
        for case in opcheck.CASES:
            print(f"{case.op:34s} {case.settings}")
        return 0
    try:
        selected = opcheck.cases(args.op)
    except ValueError as err:
        print(f"minivae gradcheck: error: {err}", file=sys.stderr)
        return 2
    if args.kernels is None:
        args.kernels = kernels.current("cpu")
    try:  # import the implementation now: one that is unknown or missing is a usage error
        kernels.module("cpu", args.kernels)
    except (ValueError, ImportError) as err:
        print(f"minivae gradcheck: error: kernels {args.kernels!r} are not available: {err}", file=sys.stderr)
        return 2
    mode = "fast (random projections)" if args.fast else "full Jacobians"
    what = {1: "first derivatives", 2: "second derivatives (gradgradcheck)"}[args.order]
    what += ", forward mode (JVPs)" if args.mode == "forward" else ", reverse mode (VJPs)"
    print(f"gradcheck: {len(selected)} cases, {what}, {mode}, float64, eps={args.eps}, atol={args.atol}, "
          f"rtol={args.rtol}, seed={args.seed}, kernels={args.kernels}")
    results = []
    with kernels.use(args.kernels):
        for case in selected:
            r = opcheck.check_case(case, seed=args.seed, fast=args.fast, n_directions=args.directions,
                                   eps=args.eps, atol=args.atol, rtol=args.rtol, order=args.order,
                                   forward_ad=args.mode == "forward")
            if args.verbose:
                print(f"  {r.op} {r.settings}: {'pass' if r.passed else 'FAIL'}", flush=True)
            results.append(r)
    print(opcheck.format_table(results))
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"FAIL {r.op} {r.settings}: {r.message}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
