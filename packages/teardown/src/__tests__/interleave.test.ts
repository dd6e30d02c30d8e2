// The random interleaving of a scenario's threads (`interleave`): every thread runs to its end, in an
// order drawn from the generator; a thread that waits ("wait": mmap_lock taken, or swapoff waiting for
// swap entries to go) lets the others run, and when every live thread waits with none able to go on it
// is a deadlock (TeardownError DEADLOCK), not an endless loop.
import { describe, expect, it } from "vitest";
import { createRng, interleave, type OpSteps } from "../index.js";

function* steps(log: string[], name: string, n: number): OpSteps {
  for (let i = 0; i < n; i++) {
    log.push(`${name}${i}`);
    yield;
  }
}

describe("interleave", () => {
  it("runs every thread to its end, each in its own order", () => {
    const log: string[] = [];
    interleave([steps(log, "a", 5), steps(log, "b", 3)], createRng(7));
    expect(log.filter((s) => s.startsWith("a"))).toEqual(["a0", "a1", "a2", "a3", "a4"]);
    expect(log.filter((s) => s.startsWith("b"))).toEqual(["b0", "b1", "b2"]);
  });

  it("a thread waiting for another goes on once the other has done something", () => {
    let released = false;
    const log: string[] = [];
    function* waiter(): OpSteps {
      while (!released) yield "wait";
      log.push("waiter done");
    }
    function* releaser(): OpSteps {
      yield;
      released = true;
      log.push("released");
    }
    for (let seed = 1; seed < 20; seed++) {
      released = false;
      log.length = 0;
      interleave([waiter(), releaser()], createRng(seed));
      expect(log).toEqual(["released", "waiter done"]);
    }
  });

  it("every live thread waiting, none able to go on: DEADLOCK, and every thread is ended", () => {
    const ended: string[] = [];
    function* stuck(name: string): OpSteps {
      try {
        for (;;) yield "wait";
      } finally {
        ended.push(name);
      }
    }
    function* finishes(): OpSteps {
      yield;
    }
    expect(() => interleave([stuck("a"), finishes()], createRng(3))).toThrow(
      expect.objectContaining({ code: "DEADLOCK" }),
    );
    expect(() => interleave([stuck("b"), stuck("c")], createRng(3))).toThrow(
      expect.objectContaining({ code: "DEADLOCK" }),
    );
    expect(ended.sort()).toEqual(["a", "b", "c"]);
  });
});
