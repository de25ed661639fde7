// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Just enough XML for S3's replies: the text of named elements. S3's
 * replies are flat records (`<Contents><Key>…</Key><Size>…</Size></Contents>`)
 * without attributes we need, CDATA or same-name nesting, so a scan for
 * `<Tag>…</Tag>` is exact for them. Internal.
 *
 * @module
 */

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

/** Replaces XML's entity and character references. */
export function decodeXmlText(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, ref: string) => {
    if (ref[0] === "#") {
      const code = ref[1] === "x" || ref[1] === "X"
        ? parseInt(ref.slice(2), 16)
        : parseInt(ref.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[ref] ?? m;
  });
}

/** The raw inner XML of every `<tag>…</tag>` in `xml`, in order. */
export function xmlElements(xml: string, tag: string): string[] {
  const out: string[] = [];
  const open = new RegExp(`<${tag}(\\s[^>]*)?>`, "g");
  const close = `</${tag}>`;
  for (let m = open.exec(xml); m !== null; m = open.exec(xml)) {
    const start = m.index + m[0].length;
    const end = xml.indexOf(close, start);
    if (end < 0) break;
    out.push(xml.slice(start, end));
    open.lastIndex = end + close.length;
  }
  return out;
}

/** The decoded text of the first `<tag>` in `xml`, or `undefined`. */
export function xmlText(xml: string, tag: string): string | undefined {
  const [first] = xmlElements(xml, tag);
  return first === undefined ? undefined : decodeXmlText(first);
}

/** Escapes text for an XML element's content. */
export function encodeXmlText(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => `&${Object.entries(ENTITIES).find(([, v]) => v === c)![0]};`,
  );
}
