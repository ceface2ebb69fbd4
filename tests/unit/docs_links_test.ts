/**
 * The documentation as a front page plus linked pages: README.md stays at most 6 KB and shows the two
 * front-door commands (CI runs the test one), and every relative link in README.md, docs/*.md and
 * examples/README.md reaches an existing file and, with a #fragment, an existing heading (GitHub's slugs).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  brokenLinks,
  documentationPages,
  githubSlug,
  headingAnchors,
  markdownLinks,
  REPOSITORY_ROOT,
} from "../../tools/markdown-links.ts";

/** The README's size limit (issue 15: "README ≤ 6 KB"). */
const README_MAX_BYTES = 6 * 1024;
/** The two front-door commands, exactly as the README shows them and CI calls the second. */
const FRONT_DOOR_COMMANDS = ["npx -y deno@2.9.6 task demo", "npx -y deno@2.9.6 task test"];

Deno.test("githubSlug: GitHub's heading anchors", () => {
  assert.equal(githubSlug("Running an edge node (`twofold up`)"), "running-an-edge-node-twofold-up");
  assert.equal(githubSlug("The status page (`GET /`, `twofold ui`)"), "the-status-page-get--twofold-ui");
  assert.equal(
    githubSlug("Frame layouts (version 2; integers big-endian)"),
    "frame-layouts-version-2-integers-big-endian",
  );
  assert.equal(githubSlug("Under attack: **listener** limits"), "under-attack-listener-limits");
  assert.equal(githubSlug("See [the map](netmap.md) & DNS"), "see-the-map--dns");
  assert.equal(githubSlug("snake_case stays"), "snake_case-stays");
});

Deno.test("headingAnchors: repeated headings get -1, -2; code blocks hold no headings", () => {
  const page = "# A\n\n## Tests\n\n```sh\n# not a heading\n```\n\n## Tests\n\n### Tests\n";
  assert.deepEqual([...headingAnchors(page)], ["a", "tests", "tests-1", "tests-2"]);
});

Deno.test("markdownLinks: inline links, images and definitions outside code, with their lines", () => {
  const page = [
    'See [ops](docs/operating.md#signals) and ![shot](docs/a.png "title").',
    "`[not](a-link.md)` and [x](https://example.com)",
    "```",
    "[inside](fence.md)",
    "```",
    "[ref]: docs/ref.md",
  ].join("\n");
  assert.deepEqual(markdownLinks(page), [
    { target: "docs/operating.md#signals", line: 1 },
    { target: "docs/a.png", line: 1 },
    { target: "https://example.com", line: 2 },
    { target: "docs/ref.md", line: 6 },
  ]);
});

Deno.test("brokenLinks: a missing file, a missing heading and a fragment on a non-page are named", () => {
  const root = Deno.makeTempDirSync({ prefix: "tf-doclinks-" });
  try {
    Deno.mkdirSync(join(root, "docs"));
    Deno.writeTextFileSync(join(root, "docs", "a.md"), "# A\n\n## Signals\n");
    Deno.writeTextFileSync(join(root, "docs", "b.png"), "png");
    Deno.writeTextFileSync(
      join(root, "README.md"),
      [
        "[ok](docs/a.md#signals) [ok2](docs/b.png) [self](#top) [web](https://example.com/x.md)",
        "[gone](docs/gone.md) [nohead](docs/a.md#preflight) [frag](docs/b.png#x) [out](../x.md)",
        "# Top",
      ].join("\n"),
    );
    assert.deepEqual(
      brokenLinks(root, ["README.md"]).map((b) => [b.line, b.target, b.reason]),
      [
        [2, "docs/gone.md", "no file docs/gone.md"],
        [2, "docs/a.md#preflight", "no heading with the anchor #preflight"],
        [2, "docs/b.png#x", "a #fragment on something that is not a Markdown page"],
        [2, "../x.md", "points outside the repository"],
      ],
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("README.md is the front page: at most 6 KB, with both front-door commands", () => {
  const readme = Deno.readFileSync(join(REPOSITORY_ROOT, "README.md"));
  assert.ok(
    readme.byteLength <= README_MAX_BYTES,
    `README.md is ${readme.byteLength} bytes, over ${README_MAX_BYTES}: move the detail to a page under docs/`,
  );
  const text = new TextDecoder().decode(readme);
  for (const command of FRONT_DOOR_COMMANDS) assert.ok(text.includes(command), `README.md lacks ${command}`);
});

Deno.test("every relative link in README.md, docs/*.md and examples/README.md resolves", () => {
  const pages = documentationPages(REPOSITORY_ROOT);
  assert.ok(pages.includes("docs/operating.md") && pages.includes("examples/README.md"), pages.join(", "));
  const broken = brokenLinks(REPOSITORY_ROOT, pages);
  assert.deepEqual(
    broken.map((b) => `${b.file}:${b.line}: ${b.target}: ${b.reason}`),
    [],
  );
});

Deno.test("every page under docs/ starts with what it covers and a link back to the README", () => {
  for (const page of documentationPages(REPOSITORY_ROOT).filter((p) => p.startsWith("docs/"))) {
    const text = Deno.readTextFileSync(join(REPOSITORY_ROOT, page));
    const firstParagraph = text.split("\n\n")[1] ?? "";
    assert.ok(
      firstParagraph.includes("](../README.md)"),
      `${page}: its first paragraph does not link the README`,
    );
  }
});
