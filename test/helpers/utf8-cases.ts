/**
 * Byte sequences at the edges of the Unicode well-formed UTF-8 table (Unicode 15, table 3-7),
 * each with the offset of its first ill-formed sequence (-1: well-formed), written out by hand.
 * The UTF-8 checks of src/train/data.ts (findInvalidUtf8, readTextFile, readCorpus) are tested
 * against them in test/data.test.ts and test/corpus.test.ts.
 */
export const UTF8_CASES: ReadonlyArray<{ bytes: number[]; at: number; what: string }> = [
  { bytes: [0xc2, 0x80], at: -1, what: 'U+0080, the smallest 2-byte lead C2' },
  { bytes: [0xdf, 0xbf], at: -1, what: 'U+07FF, the largest 2-byte lead DF' },
  { bytes: [0xc1, 0xbf], at: 0, what: 'lead C1 (overlong)' },
  { bytes: [0xe0, 0xa0, 0x80], at: -1, what: 'U+0800, E0 with A0' },
  { bytes: [0xe0, 0x9f, 0xbf], at: 0, what: 'E0 with 9F (overlong)' },
  { bytes: [0xed, 0x9f, 0xbf], at: -1, what: 'U+D7FF, ED with 9F' },
  { bytes: [0xed, 0xa0, 0x80], at: 0, what: 'U+D800 (surrogate)' },
  { bytes: [0xee, 0x80, 0x80], at: -1, what: 'U+E000, lead EE' },
  { bytes: [0xef, 0xbf, 0xbf], at: -1, what: 'U+FFFF, lead EF' },
  { bytes: [0xe2, 0x82, 0x2c], at: 0, what: 'a 3-byte sequence whose last byte is ASCII' },
  { bytes: [0xe2, 0xc2, 0x80], at: 0, what: 'a 3-byte sequence whose second byte is a lead' },
  { bytes: [0xf0, 0x90, 0x80, 0x80], at: -1, what: 'U+10000, F0 with 90' },
  { bytes: [0xf0, 0x8f, 0xbf, 0xbf], at: 0, what: 'F0 with 8F (overlong)' },
  { bytes: [0xf0, 0x80, 0x80, 0x80], at: 0, what: 'F0 with 80 (overlong)' },
  { bytes: [0xf1, 0x80, 0x80, 0x80], at: -1, what: 'U+40000, lead F1' },
  { bytes: [0xf3, 0xbf, 0xbf, 0xbf], at: -1, what: 'U+FFFFF, lead F3 with BF' },
  { bytes: [0xf4, 0x8f, 0xbf, 0xbf], at: -1, what: 'U+10FFFF, F4 with 8F' },
  { bytes: [0xf4, 0x90, 0x80, 0x80], at: 0, what: 'F4 with 90 (above U+10FFFF)' },
  { bytes: [0xf0, 0x9f, 0x98, 0x41], at: 0, what: 'a 4-byte sequence whose last byte is ASCII' },
  { bytes: [0xf5, 0x80, 0x80, 0x80], at: 0, what: 'lead F5' },
  { bytes: [0xff, 0x80, 0x80, 0x80], at: 0, what: 'lead FF' },
  { bytes: [0x80, 0x80, 0x80], at: 0, what: 'a stray continuation byte and two more' },
  { bytes: [0xbf, 0x80, 0x80, 0x80], at: 0, what: 'a stray continuation byte and three more' },
  { bytes: [0x61, 0xc3], at: 1, what: 'a 2-byte sequence cut at the end' },
  { bytes: [0x61, 0xf0, 0x9f, 0x98], at: 1, what: 'a 4-byte sequence cut at the end' },
  { bytes: [0x61, 0xe2, 0x82, 0xac, 0x62], at: -1, what: 'a, €, b' },
];
