import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CappedOutput,
  completeUtf8Length,
  decodeUtf8Capped,
  OutputTail,
  truncateUtf8,
} from "../../../src/orchestrator/drivers/output-capture.js";

const encoder = new TextEncoder();
const utf8Bytes = (text: string): number => encoder.encode(text).length;

describe("CappedOutput", () => {
  it("keeps the first capBytes across chunks and flags the rest as dropped", () => {
    const output = new CappedOutput(5);
    output.push(encoder.encode("abc"));
    expect(output.truncated).toBe(false);
    output.push(encoder.encode("def"));
    output.push(encoder.encode("ghi"));
    expect(output.text()).toBe("abcde");
    expect(output.truncated).toBe(true);
  });

  it("with a cap of zero keeps nothing and still knows whether anything came", () => {
    const empty = new CappedOutput(0);
    expect(empty.text()).toBe("");
    expect(empty.truncated).toBe(false);
    empty.push(encoder.encode("x"));
    expect(empty.text()).toBe("");
    expect(empty.truncated).toBe(true);
  });

  it("never exceeds the cap in UTF-8 bytes and keeps a prefix of valid text, however chunked", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 60 }),
        fc.nat(120),
        fc.array(fc.nat(30), { maxLength: 8 }),
        (text, capBytes, cuts) => {
          const bytes = encoder.encode(text);
          const output = new CappedOutput(capBytes);
          let offset = 0;
          for (const cut of cuts) {
            output.push(bytes.subarray(offset, Math.min(bytes.length, offset + cut)));
            offset = Math.min(bytes.length, offset + cut);
          }
          output.push(bytes.subarray(offset));
          const kept = output.text();
          expect(utf8Bytes(kept)).toBeLessThanOrEqual(capBytes);
          expect(text.startsWith(kept)).toBe(true);
          expect(output.truncated).toBe(bytes.length > capBytes);
          // Only a character cut by the cap is lost: at most 3 bytes short of the cap.
          if (output.truncated) expect(utf8Bytes(kept)).toBeGreaterThan(capBytes - 4);
          else expect(kept).toBe(text);
        },
      ),
    );
  });

  it("keeps the byte bound even for invalid UTF-8, whose bytes decode to 3-byte U+FFFD", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (bytes, capBytes) => {
        const output = new CappedOutput(capBytes);
        output.push(bytes);
        expect(utf8Bytes(output.text())).toBeLessThanOrEqual(capBytes);
      }),
    );
  });
});

describe("UTF-8 helpers", () => {
  it("finds where the last complete character ends", () => {
    const e = encoder.encode("aé€😀"); // 1 + 2 + 3 + 4 bytes
    expect(completeUtf8Length(e)).toBe(10);
    expect(completeUtf8Length(e.subarray(0, 9))).toBe(6);
    expect(completeUtf8Length(e.subarray(0, 7))).toBe(6);
    expect(completeUtf8Length(e.subarray(0, 5))).toBe(3);
    expect(completeUtf8Length(e.subarray(0, 2))).toBe(1);
    expect(completeUtf8Length(new Uint8Array(0))).toBe(0);
  });

  it("decodes a complete text whole when it fits", () => {
    expect(decodeUtf8Capped(encoder.encode("héllo"), 6, false)).toBe("héllo");
  });
});

describe("truncateUtf8", () => {
  it("keeps text that fits and marks text that was cut", () => {
    expect(truncateUtf8("short", 10)).toBe("short");
    expect(truncateUtf8("exactly 10", 10)).toBe("exactly 10");
    expect(truncateUtf8("a bit too long", 10)).toBe("a bit t…");
    expect(truncateUtf8("ééééé", 8)).toBe("éé…");
  });

  it("always fits the bound and keeps a prefix", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 80 }),
        fc.integer({ min: 3, max: 100 }),
        (text, max) => {
          const cut = truncateUtf8(text, max);
          expect(utf8Bytes(cut)).toBeLessThanOrEqual(max);
          if (cut !== text) {
            expect(cut.endsWith("…")).toBe(true);
            expect(text.startsWith(cut.slice(0, -1))).toBe(true);
          }
        },
      ),
    );
  });
});

describe("OutputTail", () => {
  it("keeps the last bytes across chunks", () => {
    const tail = new OutputTail(9);
    tail.push(encoder.encode("first line\n"));
    tail.push(encoder.encode("error: x\n"));
    expect(tail.text()).toBe("error: x");
    tail.push(encoder.encode("ab"));
    expect(tail.text()).toBe("ror: x\nab");
  });
});
