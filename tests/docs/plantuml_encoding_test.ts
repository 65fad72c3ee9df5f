import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  decodePlantUml,
  decodePlantUmlBase64,
  encodePlantUml,
  encodePlantUmlBase64,
  encodePlantUmlHex,
  PLANTUML_ALPHABET,
} from "../../scripts/docs/plantuml_encoding.ts";

const STANDARD_ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 rewritten letter by letter into PlantUML's alphabet. */
function viaStandardBase64(bytes: Uint8Array): string {
  const standard = btoa(String.fromCharCode(...bytes));
  return [...standard].map((c) =>
    PLANTUML_ALPHABET[STANDARD_ALPHABET.indexOf(c)]
  )
    .join("");
}

function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("encodePlantUmlBase64()", () => {
  test("matches standard base64 with PlantUML's alphabet", () => {
    for (let length = 3; length <= 60; length += 3) {
      const bytes = bytesOf(length, length);
      assert.equal(encodePlantUmlBase64(bytes), viaStandardBase64(bytes));
    }
    assert.equal(encodePlantUmlBase64(new Uint8Array([0, 0, 0])), "0000");
    assert.equal(encodePlantUmlBase64(new Uint8Array([255, 255, 255])), "____");
  });

  test("pads a last group of 1 or 2 bytes to 4 letters with zero bits", () => {
    assert.equal(encodePlantUmlBase64(new Uint8Array([255])), "_m00");
    assert.equal(encodePlantUmlBase64(new Uint8Array([255, 255])), "__y0");
    assert.equal(encodePlantUmlBase64(new Uint8Array([])), "");
  });
});

describe("decodePlantUmlBase64()", () => {
  test("reads back every length, with the padding bytes at the end", () => {
    for (let length = 0; length <= 20; length++) {
      const bytes = bytesOf(length, 7);
      const decoded = decodePlantUmlBase64(encodePlantUmlBase64(bytes));
      assert.deepEqual(decoded.subarray(0, length), bytes);
      assert.ok(decoded.subarray(length).every((b) => b === 0));
      assert.ok(decoded.length - length <= 2);
    }
  });

  test("throws SyntaxError on a letter outside the alphabet", () => {
    assert.throws(() => decodePlantUmlBase64("ab+c"), {
      name: "SyntaxError",
      message: /unexpected character "\+" at position 2/,
    });
  });

  test("throws SyntaxError on an impossible length", () => {
    assert.throws(() => decodePlantUmlBase64("abcde"), {
      name: "SyntaxError",
      message: /length 5/,
    });
  });
});

describe("decodePlantUml()", () => {
  test("decodes the example of PlantUML's text encoding page", async () => {
    // https://plantuml.com/text-encoding: PlantUML encodes the text between
    // @startuml and @enduml.
    const text = await decodePlantUml(
      "Syp9J4vLqBLJSCfFib9mB2t9ICqhoKnEBCdCprC8IYqiJIqkuGBAAUW2rO0LOr5LN92VLvpA1G00",
    );
    assert.equal(
      text,
      "Alice -> Bob: Authentication Request\nBob --> Alice: Authentication Response\n",
    );
  });

  test("round-trips encodePlantUml() for every padding length and UTF-8", async () => {
    for (let n = 0; n < 24; n++) {
      const text = `@startuml\nAlice -> Bob : é→✓ ${"x".repeat(n)}\n@enduml\n`;
      const encoded = await encodePlantUml(text);
      assert.match(encoded, /^[0-9A-Za-z_-]+$/);
      assert.equal(encoded.length % 4, 0);
      assert.equal(await decodePlantUml(encoded), text);
    }
  });

  test("accepts the explicit deflate marker ~0 and '=' padding", async () => {
    const text = "@startuml\na -> b\n@enduml";
    const encoded = await encodePlantUml(text);
    assert.equal(await decodePlantUml(`~0${encoded}`), text);
    assert.equal(await decodePlantUml(`${encoded}==`), text);
  });

  test("decodes the ~h hexadecimal form, in either case", async () => {
    assert.equal(encodePlantUmlHex("a->b"), "~h612d3e62");
    assert.equal(await decodePlantUml("~h612d3e62"), "a->b");
    assert.equal(await decodePlantUml("~h612D3E62"), "a->b");
    const text = "@startuml\nAlice -> Bob : héllo ✓\n@enduml";
    assert.equal(await decodePlantUml(encodePlantUmlHex(text)), text);
  });

  test("throws SyntaxError on bad input, with a message naming the problem", async () => {
    const cases: Array<[string, RegExp]> = [
      ["", /empty/],
      ["abc!", /unexpected character "!"/],
      ["abcde", /length 5/],
      ["____", /not valid deflate/],
      ["~h", /hexadecimal digits/],
      ["~h6", /hexadecimal digits/],
      ["~hzz", /hexadecimal digits/],
      ["~hff", /not valid UTF-8/],
      ["~x12", /unsupported form "~x"/],
      ["~0", /empty/],
    ];
    for (const [input, message] of cases) {
      await assert.rejects(decodePlantUml(input), {
        name: "SyntaxError",
        message,
      }, input);
    }
  });

  test("throws RangeError past the size limits, also for a deflate bomb", async () => {
    await assert.rejects(
      decodePlantUml("0".repeat(41), { maxEncodedLength: 40 }),
      {
        name: "RangeError",
        message: /41 characters, more than the limit of 40/,
      },
    );
    await assert.rejects(decodePlantUml("~h61626364", { maxTextBytes: 3 }), {
      name: "RangeError",
    });
    // 4 MiB of one letter compresses to a few KiB of letters.
    const bomb = await encodePlantUml("a".repeat(4 * 1024 * 1024));
    assert.ok(bomb.length < 16 * 1024, `bomb is ${bomb.length} letters`);
    await assert.rejects(decodePlantUml(bomb), {
      name: "RangeError",
      message: /inflates to more than the limit/,
    });
  });
});
