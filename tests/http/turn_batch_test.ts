import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { afterTurn } from "../../src/_turn.ts";
import { TurnBatch, TurnGroup } from "../../src/http/_turn_batch.ts";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** A destination that records every chunk it is handed. */
interface Dest {
  name: string;
  ready: boolean;
  chunks: Uint8Array[];
}

function dest(name: string, ready = true): Dest {
  return { name, ready, chunks: [] };
}

function batch(): TurnBatch<Dest> {
  return new TurnBatch<Dest>({
    ready: (d) => d.ready,
    send: (d, chunk) => d.chunks.push(chunk),
  });
}

function bytes(text: string): Uint8Array {
  return ENCODER.encode(text);
}

function received(d: Dest): string[] {
  return d.chunks.map((c) => DECODER.decode(c));
}

/**
 * Lets the batch's after-the-turn flush run: scheduled the same way after
 * it, so it runs after it (a 5 ms timeout could run first on a busy loop,
 * as it did on Node 22).
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => afterTurn(resolve));
}

/** A batch and one group that `members` join, in order. */
function groupWith(...members: Dest[]) {
  const b = batch();
  const group = new TurnGroup<Dest>();
  for (const m of members) b.join(m, group);
  return { b, group };
}

/** A batch with two groups. */
function twoGroups() {
  return { b: batch(), one: new TurnGroup<Dest>(), two: new TurnGroup<Dest>() };
}

/** Broadcasts "one " to `one` and "two " to `two`, and lets the turn end. */
function sendToBoth(
  b: TurnBatch<Dest>,
  one: TurnGroup<Dest>,
  two: TurnGroup<Dest>,
): Promise<void> {
  b.broadcast(one, bytes("one "));
  b.broadcast(two, bytes("two "));
  return nextTurn();
}

describe("TurnBatch", () => {
  test("TurnBatch sends what a destination got in one turn as one chunk, after the turn", async () => {
    const b = batch();
    const a = dest("a");
    b.add(a, bytes("1"));
    b.add(a, bytes("2"));
    assert.equal(b.queued(a), 2);
    assert.deepEqual(received(a), [], "nothing leaves during the turn");
    await nextTurn();
    assert.deepEqual(received(a), ["12"]);
    assert.equal(b.queued(a), 0);
  });

  test("TurnBatch keeps a destination's chunks until it is ready and flushed", async () => {
    const b = batch();
    const a = dest("a", false);
    b.add(a, bytes("x"));
    await nextTurn();
    assert.deepEqual(received(a), []);
    assert.equal(b.queued(a), 1);
    a.ready = true;
    b.flush(a);
    assert.deepEqual(received(a), ["x"]);
  });
});

describe("TurnGroup", () => {
  test("TurnGroup members get the turn's chunks as one shared chunk, and nothing more", async () => {
    const members = [dest("a"), dest("b"), dest("c")];
    const { b, group } = groupWith(...members);
    b.broadcast(group, bytes("e0 "));
    b.broadcast(group, bytes("e1 "));
    assert.equal(b.queued(members[0]), 6, "group bytes count as queued");
    await nextTurn();
    for (const m of members) assert.deepEqual(received(m), ["e0 e1 "]);
    assert.equal(members[0].chunks[0], members[2].chunks[0], "one join");
    await nextTurn();
    for (const m of members) assert.equal(m.chunks.length, 1);
  });

  test("TurnGroup member joining mid-turn gets only what was sent after it joined", async () => {
    const early = dest("early");
    const late = dest("late");
    const { b, group } = groupWith(early);
    b.broadcast(group, bytes("e0 "));
    b.join(late, group);
    b.broadcast(group, bytes("e1 "));
    await nextTurn();
    assert.deepEqual(received(early), ["e0 e1 "]);
    assert.deepEqual(received(late), ["e1 "]);
  });

  test("TurnGroup keeps a member's own writes in order with the group's chunks", async () => {
    const a = dest("a");
    const other = dest("other");
    const { b, group } = groupWith(a, other);
    b.broadcast(group, bytes("e0 "));
    b.add(a, bytes("gap "));
    b.broadcast(group, bytes("e1 "));
    await nextTurn();
    assert.deepEqual(received(a).join(""), "e0 gap e1 ");
    assert.deepEqual(received(other), ["e0 e1 "]);
  });

  test("TurnGroup member flushed early gets its share once", async () => {
    const a = dest("a", false);
    const other = dest("other");
    const { b, group } = groupWith(a, other);
    b.broadcast(group, bytes("e0 "));
    a.ready = true;
    b.flush(a);
    assert.deepEqual(received(a), ["e0 "]);
    b.broadcast(group, bytes("e1 "));
    await nextTurn();
    assert.deepEqual(received(a).join(""), "e0 e1 ");
    assert.deepEqual(received(other), ["e0 e1 "]);
  });

  test("TurnGroup members get every chunk when one took its share of several mid-turn", async () => {
    const early = dest("early");
    const others = [dest("b"), dest("c")];
    const { b, group } = groupWith(early, ...others);
    b.broadcast(group, bytes("e0 "));
    b.broadcast(group, bytes("e1 "));
    b.flush(early);
    b.broadcast(group, bytes("e2 "));
    b.broadcast(group, bytes("e3 "));
    await nextTurn();
    assert.deepEqual(received(early), ["e0 e1 ", "e2 e3 "]);
    for (const m of others) assert.deepEqual(received(m), ["e0 e1 e2 e3 "]);
  });

  test("TurnGroup member that is not ready keeps its share until it is flushed", async () => {
    const a = dest("a", false);
    const { b, group } = groupWith(a);
    b.broadcast(group, bytes("e0 "));
    await nextTurn();
    b.broadcast(group, bytes("e1 "));
    await nextTurn();
    assert.deepEqual(received(a), []);
    assert.equal(b.queued(a), 6);
    a.ready = true;
    b.flush(a);
    assert.deepEqual(received(a), ["e0 e1 "]);
  });

  test("TurnGroup member dropped mid-turn gets nothing more", async () => {
    const a = dest("a");
    const other = dest("other");
    const { b, group } = groupWith(a, other);
    b.broadcast(group, bytes("e0 "));
    b.drop(a);
    b.broadcast(group, bytes("e1 "));
    await nextTurn();
    assert.deepEqual(received(a), []);
    assert.equal(b.queued(a), 0);
    assert.equal(group.members.has(a), false);
    assert.deepEqual(received(other), ["e0 e1 "]);
  });

  test("TurnGroup members of two groups each get their own group's chunks", async () => {
    const { b, one, two } = twoGroups();
    const a = dest("a");
    const c = dest("c");
    b.join(a, one);
    b.join(c, two);
    await sendToBoth(b, one, two);
    assert.deepEqual(received(a), ["one "]);
    assert.deepEqual(received(c), ["two "]);
  });

  test("TurnBatch.join() moves a destination from one group to another", async () => {
    const { b, one, two } = twoGroups();
    const a = dest("a");
    b.join(a, one);
    b.join(a, two);
    await sendToBoth(b, one, two);
    assert.deepEqual(received(a), ["two "]);
    assert.equal(one.members.size, 0);
  });
});
