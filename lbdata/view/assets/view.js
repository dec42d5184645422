/* lbdata view — the sample browser.
 *
 * Plain JavaScript, no dependencies, no network. Works from file:// because nothing is fetched:
 * data/index.js and data/shard-NNNN.js are <script> files that call LB.index(...) and
 * LB.shard(no, rows). The index holds the facet codes of every row (for filtering and counts);
 * shards hold the rows themselves and are loaded on demand.
 */
(function () {
  "use strict";

  var LB = (window.LB = window.LB || {});
  var PAGE = 50;
  var SNIPPET_SHARDS = 4;
  var CACHE_SHARDS = 64; // shards kept in memory (about 1.3 MB of text each at 1,000 rows); older ones reload
  var S = {
    index: null,
    shards: {},
    recent: [],
    waiting: {},
    matches: [],
    pos: 0,
    filters: {},
    query: "",
    generation: 0,
    searchTimer: null,
  };

  // ------------------------------------------------------------------ data loading
  LB.index = function (data) {
    S.index = data;
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", init);
    } else {
      init();
    }
  };

  LB.shard = function (no, rows) {
    S.shards[no] = rows;
    touch(no);
    var callbacks = S.waiting[no] || [];
    delete S.waiting[no];
    callbacks.forEach(function (cb) { cb.resolve(rows); });
    fillSnippets(no);
  };

  function shardFile(no) {
    var s = String(no);
    while (s.length < 4) s = "0" + s;
    return "data/shard-" + s + ".js";
  }

  // Mark a shard as used; forget the least recently used ones beyond CACHE_SHARDS.
  function touch(no) {
    var at = S.recent.indexOf(no);
    if (at >= 0) S.recent.splice(at, 1);
    S.recent.push(no);
    while (S.recent.length > CACHE_SHARDS) delete S.shards[S.recent.shift()];
  }

  function loadShard(no) {
    if (S.shards[no]) {
      touch(no);
      return Promise.resolve(S.shards[no]);
    }
    return new Promise(function (resolve, reject) {
      if (S.waiting[no]) {
        S.waiting[no].push({ resolve: resolve, reject: reject });
        return;
      }
      S.waiting[no] = [{ resolve: resolve, reject: reject }];
      var script = document.createElement("script");
      script.src = shardFile(no);
      script.charset = "utf-8";
      var fail = function (why) {
        var callbacks = S.waiting[no] || [];
        delete S.waiting[no];
        callbacks.forEach(function (cb) { cb.reject(new Error(why)); });
      };
      script.onerror = function () { fail("cannot load " + script.src); };
      script.onload = function () {
        script.remove();
        if (S.waiting[no]) fail(script.src + " did not register its rows");
      };
      document.head.appendChild(script);
    });
  }

  function rowOf(row) {
    var size = S.index.shard_size;
    var no = Math.floor(row / size);
    return loadShard(no).then(function (rows) { return rows[row - no * size]; });
  }

  function loadedRow(row) {
    var size = S.index.shard_size;
    var rows = S.shards[Math.floor(row / size)];
    return rows ? rows[row % size] : null;
  }

  // ------------------------------------------------------------------ DOM helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined) return;
        if (key === "text") node.textContent = value;
        else if (key === "cls") node.className = value;
        else if (key.slice(0, 5) === "data-") node.setAttribute(key, value);
        else node[key] = value;
      });
    }
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  // ------------------------------------------------------------------ filters and hash
  function facets() { return S.index.facets; }

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    S.filters = {};
    facets().forEach(function (f) {
      var v = params.get(f.name);
      if (v !== null && f.values.indexOf(v) >= 0) S.filters[f.name] = v;
    });
    S.query = params.get("q") || "";
    var row = parseInt(params.get("row"), 10);
    return isNaN(row) ? null : row;
  }

  function writeHash() {
    var params = new URLSearchParams();
    facets().forEach(function (f) {
      if (S.filters[f.name]) params.set(f.name, S.filters[f.name]);
    });
    if (S.query) params.set("q", S.query);
    if (S.matches.length) params.set("row", String(S.matches[S.pos]));
    var hash = "#" + params.toString();
    if (location.hash !== hash) {
      try {
        history.replaceState(null, "", hash);
      } catch (e) {
        location.hash = hash;
      }
    }
  }

  function buildFilters() {
    var box = $("filters");
    box.textContent = "";
    facets().forEach(function (f) {
      var select = el("select", { id: "filter-" + f.name, "data-facet": f.name });
      select.appendChild(el("option", { value: "", text: "all" }));
      f.values.forEach(function (value, i) {
        var n = f.multi ? f.rows[i].length : f.counts[i];
        select.appendChild(el("option", { value: value, text: value + " (" + fmt(n) + ")" }));
      });
      select.value = S.filters[f.name] || "";
      select.addEventListener("change", function () {
        if (select.value) S.filters[f.name] = select.value;
        else delete S.filters[f.name];
        update(currentRow());
      });
      box.appendChild(el("label", { cls: "filter" }, [f.label + " ", select]));
    });
    var search = el("input", {
      id: "search", type: "search", placeholder: "search text  ( / )", value: S.query,
      autocomplete: "off", spellcheck: false,
    });
    search.addEventListener("input", function () {
      clearTimeout(S.searchTimer);
      S.searchTimer = setTimeout(function () { setQuery(search.value); }, 250);
    });
    search.addEventListener("keydown", function (e) {
      if (e.key === "Enter") {
        clearTimeout(S.searchTimer);
        setQuery(search.value);
      }
    });
    box.appendChild(el("label", { cls: "filter search" }, [search]));
    var reset = el("button", { id: "reset", type: "button", text: "reset" });
    reset.addEventListener("click", function () {
      S.filters = {};
      S.query = "";
      buildFilters();
      update(currentRow());
    });
    box.appendChild(reset);
  }

  function setQuery(q) {
    q = q.trim();
    if (q === S.query) return;
    S.query = q;
    update(currentRow());
  }

  function currentRow() { return S.matches.length ? S.matches[S.pos] : null; }

  function facetMatches() {
    var ix = S.index;
    var keep = new Uint8Array(ix.n).fill(1);
    facets().forEach(function (f) {
      var value = S.filters[f.name];
      if (!value) return;
      var code = f.values.indexOf(value);
      var i;
      if (f.multi) {
        var mask = new Uint8Array(ix.n);
        var rows = f.rows[code];
        for (i = 0; i < rows.length; i++) mask[rows[i]] = 1;
        for (i = 0; i < ix.n; i++) keep[i] &= mask[i];
      } else {
        var codes = f.codes;
        for (i = 0; i < ix.n; i++) if (codes[i] !== code) keep[i] = 0;
      }
    });
    var out = [];
    for (var r = 0; r < ix.n; r++) if (keep[r]) out.push(r);
    return out;
  }

  // Case-insensitive search text of a row (made on the fly, not kept: it would double the memory).
  function haystack(row) {
    return [row.id, row.problem, row.question, row.gold, row.answer || "", row.text].join("\n").toLowerCase();
  }

  // Scan the shards holding the candidates; resolves to the matching rows (null if superseded).
  function searchMatches(cands, query, gen) {
    var size = S.index.shard_size;
    var groups = [];
    var byShard = {};
    cands.forEach(function (row) {
      var no = Math.floor(row / size);
      if (!byShard[no]) {
        byShard[no] = [];
        groups.push(no);
      }
      byShard[no].push(row);
    });
    var results = {};
    var done = 0;
    var next = 0;
    var q = query.toLowerCase();
    return new Promise(function (resolve, reject) {
      if (!groups.length) return resolve([]);
      function work() {
        if (gen !== S.generation) return resolve(null);
        if (next >= groups.length) return;
        var no = groups[next++];
        loadShard(no).then(function (rows) {
          results[no] = byShard[no].filter(function (row) {
            return haystack(rows[row - no * size]).indexOf(q) >= 0;
          });
          done++;
          if (gen === S.generation) showCount("searching", done + "/" + groups.length + " shards");
          if (done === groups.length) {
            var out = [];
            groups.forEach(function (g) { out = out.concat(results[g]); });
            resolve(out);
          } else {
            work();
          }
        }, reject);
      }
      for (var k = 0; k < 4; k++) work();
    });
  }

  function update(keepRow) {
    var gen = ++S.generation;
    var cands = facetMatches();
    var finish = function (matches) {
      if (matches === null || gen !== S.generation) return;
      S.matches = matches;
      var at = keepRow === null || keepRow === undefined ? -1 : matches.indexOf(keepRow);
      S.pos = at >= 0 ? at : 0;
      showCount("ready");
      renderList();
      show(S.pos);
    };
    if (!S.query) {
      finish(cands);
      return;
    }
    showCount("searching", "0 shards");
    searchMatches(cands, S.query, gen).then(finish, function (err) { showError(err); });
  }

  function showCount(state, detail) {
    var box = $("count");
    box.setAttribute("data-state", state);
    if (state === "searching") {
      box.textContent = "searching… " + (detail || "");
      return;
    }
    box.setAttribute("data-count", String(S.matches.length));
    box.textContent = fmt(S.matches.length) + " of " + fmt(S.index.n) + " samples";
  }

  function showError(err) {
    var box = $("sample");
    box.setAttribute("data-state", "error");
    box.textContent = "";
    box.appendChild(el("p", { cls: "error", text: String(err && err.message ? err.message : err) }));
  }

  // ------------------------------------------------------------------ list
  function facetValue(name, row) {
    var f = null;
    facets().forEach(function (x) { if (x.name === name && !x.multi) f = x; });
    return f ? f.values[f.codes[row]] : null;
  }

  function renderList() {
    var list = $("list");
    list.textContent = "";
    var page = Math.floor(S.pos / PAGE);
    var start = page * PAGE;
    var end = Math.min(S.matches.length, start + PAGE);
    var pages = Math.max(1, Math.ceil(S.matches.length / PAGE));
    var nav = el("div", { cls: "pager" }, [
      pagerButton("‹", page > 0, function () { go(start - PAGE); }),
      el("span", { text: "page " + fmt(page + 1) + " / " + fmt(pages) }),
      pagerButton("›", page + 1 < pages, function () { go(start + PAGE); }),
    ]);
    list.appendChild(nav);
    var ol = el("ol", { start: start + 1 });
    for (var i = start; i < end; i++) {
      var row = S.matches[i];
      var status = facetValue("status", row) || facetValue("change", row);
      var variant = facetValue("variant", row);
      var li = el("li", { cls: "item" + (i === S.pos ? " current" : ""), "data-row": row, "data-pos": i }, [
        status ? el("span", { cls: "dot " + status, title: status }) : null,
        variant ? el("span", { cls: "tag variant " + variant, text: shortVariant(variant) }) : null,
        el("span", { cls: "snippet", text: "row " + fmt(row + 1) }),
      ]);
      li.addEventListener("click", onItemClick);
      ol.appendChild(li);
    }
    list.appendChild(ol);
    fillSnippets(null);
    // Load the shards behind this page's snippets, a few at most (a sparse filter spans many shards).
    var wanted = [];
    for (var j = start; j < end && wanted.length < SNIPPET_SHARDS; j++) {
      var no = Math.floor(S.matches[j] / S.index.shard_size);
      if (!S.shards[no] && wanted.indexOf(no) < 0) wanted.push(no);
    }
    wanted.forEach(function (no) { loadShard(no).catch(function () {}); });
  }

  function pagerButton(text, enabled, onClick) {
    var b = el("button", { type: "button", text: text, disabled: !enabled });
    b.addEventListener("click", onClick);
    return b;
  }

  function onItemClick(e) { go(parseInt(e.currentTarget.getAttribute("data-pos"), 10)); }

  function shortVariant(v) {
    return { semantic_back: "sem", solution_back: "sol", plain: "plain" }[v] || v;
  }

  function fillSnippets(onlyShard) {
    if (!S.index) return;
    var items = document.querySelectorAll("#list li.item");
    var size = S.index.shard_size;
    Array.prototype.forEach.call(items, function (li) {
      var row = parseInt(li.getAttribute("data-row"), 10);
      if (onlyShard !== null && Math.floor(row / size) !== onlyShard) return;
      var r = loadedRow(row);
      if (r) li.querySelector(".snippet").textContent = r.question.replace(/\s+/g, " ").slice(0, 90);
    });
  }

  function go(pos) {
    if (!S.matches.length) return;
    pos = Math.max(0, Math.min(S.matches.length - 1, pos));
    var oldPage = Math.floor(S.pos / PAGE);
    S.pos = pos;
    if (Math.floor(pos / PAGE) !== oldPage) {
      renderList();
    } else {
      Array.prototype.forEach.call(document.querySelectorAll("#list li.item"), function (li) {
        li.classList.toggle("current", parseInt(li.getAttribute("data-pos"), 10) === pos);
      });
    }
    show(pos);
  }

  // ------------------------------------------------------------------ one sample
  function show(pos) {
    var box = $("sample");
    writeHash();
    if (!S.matches.length) {
      box.setAttribute("data-state", "empty");
      box.textContent = "";
      box.appendChild(el("p", { cls: "empty", text: "No sample matches these filters." }));
      return;
    }
    var row = S.matches[pos];
    box.setAttribute("data-state", "loading");
    rowOf(row).then(function (r) {
      if (currentRow() !== row) return;
      renderSample(r, pos);
      var current = document.querySelector("#list li.current");
      if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
      if (pos + 1 < S.matches.length) rowOf(S.matches[pos + 1]).catch(function () {});
    }, showError);
  }

  function renderSample(r, pos) {
    var box = $("sample");
    box.textContent = "";
    box.setAttribute("data-row", String(r.n));
    box.setAttribute("data-id", r.id);

    var tags = [
      el("span", { cls: "tag variant " + r.variant, text: r.variant }),
      r.status ? el("span", { cls: "tag status " + r.status, text: r.status }) : null,
      r.change ? el("span", { cls: "tag status " + r.change, text: r.change }) : null,
    ];
    (r.reasons || []).forEach(function (reason) {
      tags.push(el("span", { cls: "tag reason", text: reason }));
    });
    box.appendChild(el("header", { cls: "sample-head" }, [
      el("h2", { text: "Sample " + fmt(pos + 1) + " of " + fmt(S.matches.length) }),
      el("div", { cls: "tags" }, tags),
      el("dl", { cls: "ids" }, metaPairs(r)),
    ]));

    if (r.images && r.images.length) {
      // img: [sha256, ext, width, height, thumbnail file name or null when the image was unreadable]
      box.appendChild(el("div", { cls: "images" }, r.images.map(function (img, i) {
        var full = "images/" + img[0] + "." + img[1];
        var label = "image " + (i + 1) + ": " + img[2] + "×" + img[3];
        var a = el("a", { href: full, cls: "thumb", title: label + " (click to enlarge)" }, [
          img[4] ? el("img", { src: "thumbs/" + img[4], alt: "image " + (i + 1) })
                 : el("span", { cls: "noimage", text: label + " is missing" }),
        ]);
        a.addEventListener("click", function (e) {
          e.preventDefault();
          openImage(full);
        });
        return a;
      })));
    }

    box.appendChild(el("h3", { text: "Question" }));
    box.appendChild(el("p", { cls: "question", text: r.question }));
    if (r.choices && r.choices.length) {
      box.appendChild(el("ol", { cls: "choices", type: "A" }, r.choices.map(function (c) {
        return el("li", { text: c });
      })));
    }

    var mark = r.match === true ? " ✓" : r.match === false ? " ✗" : "";
    box.appendChild(el("table", { cls: "answers" }, [
      el("tr", null, [el("th", { text: "gold" }), el("td", { cls: "gold", text: r.gold })]),
      el("tr", null, [
        el("th", { text: "extracted" }),
        el("td", { cls: "extracted" + (r.match === false ? " wrong" : ""), text: (r.answer === null ? "—" : r.answer) + mark }),
      ]),
    ]));

    box.appendChild(el("h3", null, [
      "Trace ",
      el("span", { cls: "legend" }, [
        el("span", { cls: "seg seg-think", text: "think" }), " ",
        el("span", { cls: "seg seg-back", text: "back" }), " ",
        el("span", { cls: "seg seg-answer", text: "answer" }),
      ]),
    ]));
    box.appendChild(renderTrace(r.text, r.segments));

    if (r.judgments && r.judgments.length) box.appendChild(renderJudgments(r.judgments));

    var scores = Object.keys(r.scores || {});
    if (scores.length) {
      box.appendChild(el("h3", { text: "Scores" }));
      box.appendChild(el("table", { cls: "scores" }, scores.map(function (k) {
        return el("tr", null, [el("th", { text: k }), el("td", { text: String(r.scores[k]) })]);
      })));
    }
    box.setAttribute("data-state", "ready");
  }

  // Each judge's claims about the backs (lbdata judge), supported true / false / null, or "unjudged".
  // Claims are untrusted text: they go in as text nodes, never as markup.
  function renderJudgments(judgments) {
    var box = el("section", { cls: "judgments" }, [el("h3", { text: "Judge" })]);
    judgments.forEach(function (j) {
      var head = el("p", { cls: "judge", "data-judge": j.judge, "data-status": j.status }, [
        el("strong", { text: j.judge }), " ",
        j.status === "judged"
          ? j.claims.length + (j.claims.length === 1 ? " claim" : " claims")
          : el("span", { cls: "tag status unjudged", text: "unjudged" }),
        j.error ? el("span", { cls: "note", text: " " + j.error }) : null,
      ]);
      box.appendChild(head);
      if (j.status === "judged" && j.claims.length) {
        box.appendChild(el("table", { cls: "claims" }, j.claims.map(function (c) {
          var word = c[1] === true ? "true" : c[1] === false ? "false" : "null";
          return el("tr", { "data-supported": word }, [
            el("td", { cls: "supported " + word, text: word }),
            el("td", { cls: "claim", text: c[0] }),
          ]);
        })));
      }
    });
    return box;
  }

  function metaPairs(r) {
    var pairs = [["id", r.id], ["problem", r.problem], ["source", r.source], ["split", r.split], ["teacher", r.teacher]];
    var out = [];
    pairs.forEach(function (p) {
      if (p[1] === null || p[1] === undefined || p[1] === "") return;
      out.push(el("dt", { text: p[0] }));
      out.push(el("dd", { text: String(p[1]) }));
    });
    return out;
  }

  // The text, with each [kind, start, end] segment wrapped in a coloured span.
  function renderTrace(text, segments) {
    var box = el("div", { cls: "trace" });
    var at = 0;
    (segments || []).forEach(function (s) {
      if (s[1] > at) box.appendChild(document.createTextNode(text.slice(at, s[1])));
      box.appendChild(el("span", { cls: "seg seg-" + s[0], "data-kind": s[0], text: text.slice(s[1], s[2]) }));
      at = s[2];
    });
    if (at < text.length) box.appendChild(document.createTextNode(text.slice(at)));
    return box;
  }

  // ------------------------------------------------------------------ full-size image
  function openImage(src) {
    var box = $("lightbox");
    box.querySelector("img").src = src;
    box.hidden = false;
  }

  function closeImage() { $("lightbox").hidden = true; }

  // ------------------------------------------------------------------ keyboard
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
    if (e.key === "Escape") {
      if (!$("lightbox").hidden) closeImage();
      else if (typing) t.blur();
      return;
    }
    if (typing) return;
    var handled = true;
    switch (e.key) {
      case "j": case "ArrowDown": case "ArrowRight": go(S.pos + 1); break;
      case "k": case "ArrowUp": case "ArrowLeft": go(S.pos - 1); break;
      case "g": case "Home": go(0); break;
      case "G": case "End": go(S.matches.length - 1); break;
      case "/": $("search").focus(); break;
      case "o": {
        var first = document.querySelector("#sample a.thumb");
        if (first) openImage(first.getAttribute("href"));
        break;
      }
      default: handled = false;
    }
    if (handled) e.preventDefault();
  }

  // ------------------------------------------------------------------ start
  function init() {
    if (init.done) return;
    init.done = true;
    var keep = readHash();
    buildFilters();
    document.addEventListener("keydown", onKey);
    $("lightbox").addEventListener("click", closeImage);
    window.addEventListener("hashchange", function () {
      var wanted = readHash();
      buildFilters();
      update(wanted);
    });
    update(keep);
  }
})();
