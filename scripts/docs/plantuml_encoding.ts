/**
 * PlantUML's text encoding, the form a PlantUML server takes diagrams in
 * (`/svg/<encoded>`): the UTF-8 text, compressed with raw deflate, written
 * with PlantUML's own 64-letter alphabet `0-9A-Za-z-_`; or `~h` followed by
 * the hexadecimal UTF-8 bytes. Web standards only (CompressionStream,
 * DecompressionStream, TextEncoder), so it runs on Deno, Bun and Node.
 *
 * @example Build a URL for a PlantUML server
 * ```ts
 * import { encodePlantUml } from "./plantuml_encoding.ts";
 * const encoded = await encodePlantUml("@startuml\nAlice -> Bob\n@enduml");
 * const url = `http://127.0.0.1:8088/svg/${encoded}`;
 * ```
 *
 * @module
 */

/** The 64 letters PlantUML writes 6-bit values with, in value order. */
export const PLANTUML_ALPHABET =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/** Longest encoded string {@linkcode decodePlantUml} accepts, by default. */
export const MAX_ENCODED_LENGTH = 64 * 1024;

/** Largest decoded text, in UTF-8 bytes, {@linkcode decodePlantUml} accepts, by default. */
export const MAX_TEXT_BYTES = 512 * 1024;

const LETTER_VALUES: ReadonlyMap<string, number> = new Map(
  [...PLANTUML_ALPHABET].map((letter, value) => [letter, value]),
);

/** Options of {@linkcode decodePlantUml}. */
export interface DecodeOptions {
  /**
   * Longest encoded string accepted.
   * @default {MAX_ENCODED_LENGTH}
   */
  maxEncodedLength?: number;
  /**
   * Largest decoded text accepted, in UTF-8 bytes; inflating stops there.
   * @default {MAX_TEXT_BYTES}
   */
  maxTextBytes?: number;
}

/**
 * Writes bytes with PlantUML's alphabet: every 3 bytes become 4 letters, and
 * a last group of 1 or 2 bytes is padded with zero bytes to 4 letters, as
 * PlantUML's own encoder does.
 *
 * @param bytes The bytes to write.
 * @returns The letters, a multiple of 4 long.
 *
 * @example Usage
 * ```ts
 * import { encodePlantUmlBase64 } from "./plantuml_encoding.ts";
 * encodePlantUmlBase64(new Uint8Array([0, 0, 0])); // "0000"
 * ```
 */
export function encodePlantUmlBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const b1 = bytes[i];
    const b2 = i + 1 < bytes.length ? bytes[i + 1] : 0;
    const b3 = i + 2 < bytes.length ? bytes[i + 2] : 0;
    out += PLANTUML_ALPHABET[b1 >> 2] +
      PLANTUML_ALPHABET[((b1 & 0x03) << 4) | (b2 >> 4)] +
      PLANTUML_ALPHABET[((b2 & 0x0f) << 2) | (b3 >> 6)] +
      PLANTUML_ALPHABET[b3 & 0x3f];
  }
  return out;
}

/**
 * Reads letters of PlantUML's alphabet back into bytes. Every letter gives 6
 * bits; bits left over at the end (less than a byte) are dropped, so the
 * result can end with the zero bytes the encoder padded with.
 *
 * @param letters Letters of {@linkcode PLANTUML_ALPHABET}; `=` padding at the end is ignored.
 * @returns The bytes.
 * @throws {SyntaxError} When a letter is outside the alphabet or the length cannot be a valid encoding.
 *
 * @example Usage
 * ```ts
 * import { decodePlantUmlBase64 } from "./plantuml_encoding.ts";
 * decodePlantUmlBase64("0000"); // Uint8Array [0, 0, 0]
 * ```
 */
export function decodePlantUmlBase64(letters: string): Uint8Array<ArrayBuffer> {
  const text = letters.replace(/=+$/, "");
  if (text.length % 4 === 1) {
    throw new SyntaxError(
      `Cannot decode PlantUML text: length ${text.length} is not a valid encoding length`,
    );
  }
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let bitCount = 0;
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const value = LETTER_VALUES.get(text[i]);
    if (value === undefined) {
      throw new SyntaxError(
        `Cannot decode PlantUML text: unexpected character ${
          JSON.stringify(text[i])
        } at position ${i}`,
      );
    }
    bits = ((bits << 6) | value) & 0xffffff;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      out[at++] = (bits >> bitCount) & 0xff;
    }
  }
  return out;
}

/**
 * Encodes diagram text the way PlantUML servers read it in their URLs:
 * UTF-8, raw deflate, PlantUML's alphabet.
 *
 * @param text The diagram source.
 * @returns The encoded form, for `/svg/<encoded>` or `/png/<encoded>`.
 *
 * @example Usage
 * ```ts
 * import { encodePlantUml } from "./plantuml_encoding.ts";
 * const encoded = await encodePlantUml("@startuml\nAlice -> Bob\n@enduml");
 * ```
 */
export async function encodePlantUml(text: string): Promise<string> {
  const input = new Blob([new TextEncoder().encode(text)]).stream();
  const compressed = input.pipeThrough(new CompressionStream("deflate-raw"));
  const bytes = new Uint8Array(await new Response(compressed).arrayBuffer());
  return encodePlantUmlBase64(bytes);
}

/**
 * Encodes diagram text in PlantUML's hexadecimal form: `~h` and the UTF-8
 * bytes in hexadecimal. Longer than {@linkcode encodePlantUml}, but easy to
 * write by hand or in a shell.
 *
 * @param text The diagram source.
 * @returns `~h` followed by lower-case hexadecimal digits.
 *
 * @example Usage
 * ```ts
 * import { encodePlantUmlHex } from "./plantuml_encoding.ts";
 * encodePlantUmlHex("a->b"); // "~h612d3e62"
 * ```
 */
export function encodePlantUmlHex(text: string): string {
  let out = "~h";
  for (const byte of new TextEncoder().encode(text)) {
    out += byte.toString(16).padStart(2, "0");
  }
  return out;
}

/**
 * Decodes what a PlantUML server receives in `/svg/<encoded>`: the deflate
 * form (optionally marked with `~0`) or the hexadecimal `~h` form.
 *
 * @param encoded The encoded diagram.
 * @param options Size limits.
 * @returns The diagram source.
 * @throws {SyntaxError} When the input is not a valid encoding, does not
 * inflate, or is not UTF-8.
 * @throws {RangeError} When the input or the decoded text is over the limits.
 *
 * @example Usage
 * ```ts
 * import { decodePlantUml } from "./plantuml_encoding.ts";
 * await decodePlantUml("~h612d3e62"); // "a->b"
 * ```
 */
export async function decodePlantUml(
  encoded: string,
  options: DecodeOptions = {},
): Promise<string> {
  const maxEncodedLength = options.maxEncodedLength ?? MAX_ENCODED_LENGTH;
  const maxTextBytes = options.maxTextBytes ?? MAX_TEXT_BYTES;
  if (encoded.length > maxEncodedLength) {
    throw new RangeError(
      `Cannot decode PlantUML text: ${encoded.length} characters, more than the limit of ${maxEncodedLength}`,
    );
  }
  if (encoded.startsWith("~h")) {
    return utf8(decodeHex(encoded.slice(2), maxTextBytes));
  }
  const letters = encoded.startsWith("~0") ? encoded.slice(2) : encoded;
  if (letters.startsWith("~")) {
    throw new SyntaxError(
      `Cannot decode PlantUML text: unsupported form ${
        JSON.stringify(letters.slice(0, 2))
      } (supported: deflate, ~0 deflate, ~h hexadecimal)`,
    );
  }
  if (letters.length === 0) {
    throw new SyntaxError("Cannot decode PlantUML text: it is empty");
  }
  const text = utf8(
    await inflateTrimmingPadding(decodePlantUmlBase64(letters), maxTextBytes),
  );
  // Deno's DecompressionStream accepts a stream cut short and yields what it
  // has; an empty result is the common case of that, and never a diagram.
  if (text.length === 0) {
    throw new SyntaxError(
      "Cannot decode PlantUML text: it inflates to nothing",
    );
  }
  return text;
}

function decodeHex(hex: string, maxTextBytes: number): Uint8Array<ArrayBuffer> {
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new SyntaxError(
      "Cannot decode PlantUML text: ~h must be followed by an even number of hexadecimal digits",
    );
  }
  if (hex.length / 2 > maxTextBytes) {
    throw new RangeError(
      `Cannot decode PlantUML text: more than the limit of ${maxTextBytes} bytes`,
    );
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SyntaxError("Cannot decode PlantUML text: it is not valid UTF-8");
  }
}

// The letters carry up to two zero bytes of padding after the deflate data,
// and every runtime's DecompressionStream rejects bytes after the end of the
// stream. Try the longest candidate first: data with junk after it always
// fails, while a stream cut short is accepted silently by some runtimes.
async function inflateTrimmingPadding(
  bytes: Uint8Array<ArrayBuffer>,
  maxTextBytes: number,
): Promise<Uint8Array> {
  let lastError: unknown;
  for (let trim = 0; trim <= 2 && trim < bytes.length; trim++) {
    if (trim > 0 && bytes[bytes.length - trim] !== 0) break;
    try {
      return await inflate(
        bytes.subarray(0, bytes.length - trim),
        maxTextBytes,
      );
    } catch (error) {
      if (error instanceof RangeError) throw error;
      lastError = error;
    }
  }
  throw new SyntaxError(
    "Cannot decode PlantUML text: the data is not valid deflate",
    { cause: lastError },
  );
}

async function inflate(
  bytes: Uint8Array<ArrayBuffer>,
  maxTextBytes: number,
): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(
    new DecompressionStream("deflate-raw"),
  );
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      // Stop a small input that inflates to a huge text (a deflate bomb).
      if (total > maxTextBytes) {
        throw new RangeError(
          `Cannot decode PlantUML text: it inflates to more than the limit of ${maxTextBytes} bytes`,
        );
      }
      chunks.push(value);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
