/**
 * G.711 µ-law and A-law (ITU-T G.711, the classic Sun reference algorithm) as lookup tables, so
 * the mixer's hot path is one array read per sample in each direction.
 */

export type Codec = 'PCMU' | 'PCMA';

/** Static RTP payload types of the two codecs (RFC 3551). */
export const PayloadTypes: Readonly<Record<Codec, number>> = { PCMU: 0, PCMA: 8 };

export function codecOfPayloadType(pt: number): Codec | undefined {
  return pt === 0 ? 'PCMU' : pt === 8 ? 'PCMA' : undefined;
}

/** The byte a silent frame is made of. */
export const SilenceByte: Readonly<Record<Codec, number>> = { PCMU: 0xff, PCMA: 0xd5 };

const SEG_UEND = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
const SEG_AEND = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function segment(value: number, table: number[]): number {
  for (let i = 0; i < table.length; i++) if (value <= table[i]!) return i;
  return table.length;
}

export function linearToUlaw(sample: number): number {
  let pcm = sample >> 2;
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (pcm > 8159) pcm = 8159;
  pcm += 0x84 >> 2;
  const seg = segment(pcm, SEG_UEND);
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((pcm >> (seg + 1)) & 0xf)) ^ mask;
}

export function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  let t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

export function linearToAlaw(sample: number): number {
  let pcm = sample >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  const seg = segment(pcm, SEG_AEND);
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << 4;
  aval |= seg < 2 ? (pcm >> 1) & 0xf : (pcm >> seg) & 0xf;
  return aval ^ mask;
}

export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

function decodeTable(decode: (b: number) => number): Int16Array {
  const table = new Int16Array(256);
  for (let b = 0; b < 256; b++) table[b] = decode(b);
  return table;
}

/** Indexed by sample + 32768 (a clipped 16-bit sample). */
function encodeTable(encode: (s: number) => number): Uint8Array {
  const table = new Uint8Array(65536);
  for (let s = -32768; s < 32768; s++) table[s + 32768] = encode(s);
  return table;
}

export const DecodeTables: Readonly<Record<Codec, Int16Array>> = {
  PCMU: decodeTable(ulawToLinear),
  PCMA: decodeTable(alawToLinear),
};

export const EncodeTables: Readonly<Record<Codec, Uint8Array>> = {
  PCMU: encodeTable(linearToUlaw),
  PCMA: encodeTable(linearToAlaw),
};

/** Decode table by RTP payload type (0 and 8; anything else is not audio we mix). */
export function decodeTableFor(pt: number): Int16Array | undefined {
  const codec = codecOfPayloadType(pt);
  return codec ? DecodeTables[codec] : undefined;
}

/**
 * Decode table indexed by the 7-bit RTP payload type (same mapping as decodeTableFor), so the
 * receive path is one array read per packet.
 */
export const DecodeTablesByPayloadType: readonly (Int16Array | undefined)[] = Array.from({ length: 128 }, (_, pt) =>
  decodeTableFor(pt),
);
