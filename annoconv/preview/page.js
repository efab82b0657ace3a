// annoconv preview: the class filter and the enlarged view. The page works without this
// script (thumbnails and boxes are plain HTML); it reads the images' facts from the JSON
// block #annoconv-data, and needs no network.
(function () {
  "use strict";
  var root = document.querySelector(".annoconv-preview");
  var data = JSON.parse(document.getElementById("annoconv-data").textContent);
  var cards = Array.prototype.slice.call(root.querySelectorAll(".grid .card"));
  var viewer = document.getElementById("viewer");
  var stage = viewer.querySelector(".viewer-stage");
  var hidden = new Set();
  var current = -1;

  function each(selector, action, scope) {
    Array.prototype.forEach.call((scope || root).querySelectorAll(selector), action);
  }

  function applyFilter() {
    each(".box", function (box) {
      box.classList.toggle("hidden-class", hidden.has(box.dataset.class));
    });
    each(".legend input[data-class]", function (input) {
      input.checked = !hidden.has(input.dataset.class);
    });
    var hideEmpty = document.getElementById("hide-empty").checked;
    cards.forEach(function (card) {
      var shown = Array.prototype.some.call(card.querySelectorAll(".box"), function (box) {
        return !hidden.has(box.dataset.class);
      });
      card.hidden = hideEmpty && !shown;
    });
  }

  each(".legend input[data-class]", function (input) {
    input.addEventListener("change", function () {
      if (input.checked) { hidden.delete(input.dataset.class); } else { hidden.add(input.dataset.class); }
      applyFilter();
    });
  });
  each(".legend button.only", function (button) {
    button.addEventListener("click", function () {
      hidden = new Set(data.classes.map(function (item) { return item.name; }));
      hidden.delete(button.dataset.class);
      applyFilter();
    });
  });
  document.getElementById("all-classes").addEventListener("click", function () {
    hidden.clear();
    applyFilter();
  });
  document.getElementById("hide-empty").addEventListener("change", applyFilter);
  document.getElementById("show-tags").addEventListener("change", function (event) {
    root.classList.toggle("no-tags", !event.target.checked);
  });
  document.getElementById("tile-size").addEventListener("input", function (event) {
    root.style.setProperty("--tile", event.target.value + "px");
  });

  function number(value) {
    return (Math.round(value * 10) / 10).toString();
  }

  function cellOf(text, className) {
    var cell = document.createElement("td");
    cell.textContent = text;
    if (className) { cell.className = className; }
    return cell;
  }

  function light(index, on) {
    each('.box[data-index="' + index + '"]', function (box) { box.classList.toggle("lit", on); }, stage);
    each('tr[data-index="' + index + '"]', function (row) { row.classList.toggle("lit", on); }, viewer);
  }

  function describe(info) {
    document.getElementById("viewer-name").textContent = info.filename;
    var meta = info.width + " \u00d7 " + info.height + " px as decoded \u00b7 " + info.boxes.length + " boxes";
    if (info.key !== info.filename) { meta += " \u00b7 key " + info.key; }
    if (info.split) { meta += " \u00b7 split " + info.split; }
    document.getElementById("viewer-meta").textContent = meta;
    document.getElementById("viewer-origin").textContent = info.origin || "";
    var notes = document.getElementById("viewer-notes");
    notes.replaceChildren();
    info.notes.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      notes.appendChild(item);
    });
    var body = document.getElementById("viewer-boxes");
    body.replaceChildren();
    info.boxes.forEach(function (box, index) {
      var row = document.createElement("tr");
      row.dataset.index = index;
      var name = cellOf("");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = data.colors[box[0]];
      name.appendChild(swatch);
      name.appendChild(document.createTextNode(" " + box[0]));
      row.appendChild(name);
      box.slice(1).forEach(function (value) { row.appendChild(cellOf(number(value))); });
      row.addEventListener("mouseenter", function () { light(index, true); });
      row.addEventListener("mouseleave", function () { light(index, false); });
      body.appendChild(row);
    });
  }

  function fit() {
    var frame = stage.querySelector(".frame");
    if (!frame || current < 0) { return; }
    var info = data.images[current];
    var style = getComputedStyle(stage);
    var width = stage.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    var height = stage.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    var scale = Math.min(width / info.width, height / info.height);
    frame.style.width = info.width * scale + "px";
    frame.style.height = info.height * scale + "px";
  }

  function open(index) {
    current = index;
    var frame = cards[index].querySelector(".frame").cloneNode(true);
    frame.classList.remove("wide", "tall");
    frame.removeAttribute("tabindex");
    frame.style.aspectRatio = "";
    stage.replaceChildren(frame);
    each(".box", function (box) {
      box.addEventListener("mouseenter", function () { light(box.dataset.index, true); });
      box.addEventListener("mouseleave", function () { light(box.dataset.index, false); });
    }, stage);
    describe(data.images[index]);
    viewer.hidden = false;
    fit();
  }

  function close() {
    viewer.hidden = true;
    stage.replaceChildren();
    current = -1;
  }

  function step(direction) {
    var index = current;
    for (var tries = 0; tries < cards.length; tries += 1) {
      index = (index + direction + cards.length) % cards.length;
      if (!cards[index].hidden) { open(index); return; }
    }
  }

  cards.forEach(function (card, index) {
    var frame = card.querySelector(".frame");
    frame.addEventListener("click", function () { open(index); });
    frame.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(index); }
    });
  });
  viewer.querySelector(".close").addEventListener("click", close);
  stage.addEventListener("click", function (event) {
    if (event.target === stage) { close(); }
  });
  document.addEventListener("keydown", function (event) {
    if (viewer.hidden) { return; }
    if (event.key === "Escape") { close(); }
    if (event.key === "ArrowRight") { step(1); }
    if (event.key === "ArrowLeft") { step(-1); }
  });
  window.addEventListener("resize", fit);
})();
