/**
 * Relative links in the project's Markdown pages, and whether they resolve: the pure parts (links, heading
 * anchors with GitHub's slugs) and a checker that reads the files. The docs test runs it over README.md,
 * docs/*.md and examples/README.md so a moved page or a renamed heading cannot leave a dead link behind.
 * @module
 */
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

/** One link found in a Markdown page: its target as written and the 1-based line it is on. */
export interface MarkdownLink {
  target: string;
  line: number;
}

/** A link that does not resolve, with the reason in one sentence. */
export interface BrokenLink {
  file: string;
  line: number;
  target: string;
  reason: string;
}

const FENCE = /^\s{0,3}(```|~~~)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const INLINE_LINK = /!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
const REFERENCE_DEFINITION = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/;
const CODE_SPAN = /(`+)[\s\S]*?\1/g;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** The lines of a page outside fenced code blocks (inside ones become empty, so line numbers stay). */
function proseLines(markdown: string): string[] {
  let inFence: string | null = null;
  return markdown.split("\n").map((line) => {
    const fence = line.match(FENCE);
    if (fence) {
      if (inFence === null) inFence = fence[1];
      else if (fence[1] === inFence) inFence = null;
      return "";
    }
    return inFence === null ? line : "";
  });
}

/** Every link target of a page (inline links, images, reference definitions), outside code. */
export function markdownLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  proseLines(markdown).forEach((raw, index) => {
    const line = raw.replace(CODE_SPAN, (span) => " ".repeat(span.length));
    for (const match of line.matchAll(INLINE_LINK)) links.push({ target: match[1], line: index + 1 });
    const definition = line.match(REFERENCE_DEFINITION);
    if (definition) links.push({ target: definition[1], line: index + 1 });
  });
  return links;
}

/**
 * GitHub's anchor for a heading text: the rendered text (code spans, emphasis and links reduced to their
 * text) lower-cased, punctuation removed, each space a hyphen.
 */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`+([^`]*)`+/g, "$1")
    .replace(/(\*\*|__|\*|_)(\S[\s\S]*?)\1/g, "$2")
    .replace(/<[^>]+>/g, "");
  return text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** Every heading anchor of a page, with GitHub's `-1`, `-2`, … suffixes for repeated headings. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = line.match(HEADING);
    if (!heading) continue;
    const slug = githubSlug(heading[2]);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Reads a file, or null when there is none (a directory counts as existing, with no text). */
function readIfExists(path: string): { text: string | null } | null {
  try {
    const info = Deno.statSync(path);
    return { text: info.isFile ? Deno.readTextFileSync(path) : null };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Checks every relative link of the given pages (paths relative to `root`): the file must exist, and a
 * `#fragment` must name a heading of the Markdown page it points to. Links with a scheme (https:, mailto:)
 * are not checked.
 */
export function brokenLinks(root: string, pages: string[]): BrokenLink[] {
  const broken: BrokenLink[] = [];
  for (const page of pages) {
    const pagePath = join(root, page);
    const markdown = Deno.readTextFileSync(pagePath);
    for (const { target, line } of markdownLinks(markdown)) {
      if (SCHEME.test(target)) continue;
      const hash = target.indexOf("#");
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const fragment = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
      const targetPath = pathPart === "" ? pagePath : normalize(join(dirname(pagePath), pathPart));
      const report = (reason: string) => broken.push({ file: page, line, target, reason });
      if (!normalize(targetPath).startsWith(normalize(root))) {
        report("points outside the repository");
        continue;
      }
      const file = readIfExists(targetPath);
      if (file === null) {
        report(`no file ${pathPart}`);
        continue;
      }
      if (fragment === null || fragment === "") continue;
      if (file.text === null || !targetPath.endsWith(".md")) {
        report("a #fragment on something that is not a Markdown page");
      } else if (!headingAnchors(file.text).has(fragment)) {
        report(`no heading with the anchor #${fragment}`);
      }
    }
  }
  return broken;
}

/** The pages whose links the docs test checks: README.md, docs/*.md and examples/README.md. */
export function documentationPages(root: string): string[] {
  const docs = [...Deno.readDirSync(join(root, "docs"))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => `docs/${entry.name}`)
    .sort();
  return ["README.md", ...docs, "examples/README.md"];
}

/** The repository root (this file lives in tools/). */
export const REPOSITORY_ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));
