import { describe, expect, it } from "vitest";
import { createSlots } from "./slots.ts";

const never = new AbortController().signal;

describe("createSlots", () => {
  it("grants at once while under every limit", async () => {
    const slots = createSlots({ total: 2, perHost: 2, perAdmission: 2 });
    await slots.acquire("a", "h", never);
    await slots.acquire("b", "h", never);
  });

  it("holds an admission to its own limit while another admission still gets a slot", async () => {
    const slots = createSlots({ total: 4, perHost: 4, perAdmission: 2 });
    const granted: string[] = [];
    for (let i = 0; i < 4; i++) void slots.acquire("flood", "h", never).then(() => granted.push(`flood${i}`));
    void slots.acquire("normal", "h", never).then(() => granted.push("normal"));
    await Promise.resolve();
    await Promise.resolve();
    expect(granted).toEqual(["flood0", "flood1", "normal"]);
  });

  it("holds a registry host to its limit, leaving slots for other hosts", async () => {
    const slots = createSlots({ total: 4, perHost: 2, perAdmission: 4 });
    const granted: string[] = [];
    for (const name of ["a", "b", "c"]) void slots.acquire(name, "slow", never).then(() => granted.push(`${name}@slow`));
    void slots.acquire("d", "fast", never).then(() => granted.push("d@fast"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(granted).toEqual(["a@slow", "b@slow", "d@fast"]);
  });

  it("serves waiting admissions in turn, not first come first served", async () => {
    const slots = createSlots({ total: 1, perHost: 1, perAdmission: 1 });
    const first = await slots.acquire("x", "h", never);
    const order: string[] = [];
    const waits = [
      ...["flood1", "flood2", "flood3"].map((tag) => slots.acquire("flood", "h", never).then((release) => [tag, release] as const)),
      slots.acquire("normal", "h", never).then((release) => ["normal", release] as const),
    ];
    const settled = waits.map((wait) =>
      wait.then(([tag, release]) => {
        order.push(tag);
        release();
      }),
    );
    first();
    await Promise.all(settled);
    expect(order).toEqual(["flood1", "normal", "flood2", "flood3"]);
  });

  it("stops waiting when the signal aborts, and the slot goes to the next waiter", async () => {
    const slots = createSlots({ total: 1, perHost: 1, perAdmission: 1 });
    const release = await slots.acquire("a", "h", never);
    const controller = new AbortController();
    const abandoned = slots.acquire("b", "h", controller.signal);
    const next = slots.acquire("c", "h", never);
    controller.abort(new Error("gave up"));
    await expect(abandoned).rejects.toThrow("gave up");
    release();
    await next;
  });

  it("counts a release once, however often it is called", async () => {
    const slots = createSlots({ total: 1, perHost: 1, perAdmission: 1 });
    const release = await slots.acquire("a", "h", never);
    release();
    release();
    await slots.acquire("b", "h", never);
    let third = false;
    void slots.acquire("c", "h", never).then(() => {
      third = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(third).toBe(false);
  });
});
