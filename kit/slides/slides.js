/* The decks of tools/slides.py: start reveal.js, then fit every slide into the 1280x720 page.
 *
 * Fitting waits for MathJax's first typesetting (equations change the size of the text). First every
 * block wider than the slide (a long equation, a wide line of code or a table) gets a smaller font, down
 * to MIN_WIDE_SCALE, until it fits across. Then, slide by slide: a slide's
 * figure (.r-stretch) gets the height that the rest of the slide leaves (reveal.js does that in
 * Reveal.layout()); where the text would overflow, or leave the figure less than MIN_FIGURE of the
 * page, the slide's font is reduced in steps of 5%, down to MIN_SCALE. Each slide records its scale in
 * data-font-scale, and the body gets data-slides-fitted="true" when all are done (the browser test
 * waits for it).
 */
(function () {
  "use strict";
  var MIN_SCALE = 0.6;
  var MIN_FIGURE = 0.4;
  var MIN_WIDE_SCALE = 0.5;
  var WIDE = ".part.equation, .part.code pre, pre.part.output, .part .MathJax_Display, .part table";

  function fitWidth(block) {
    var scale = 1;
    var room = block.parentElement.clientWidth;
    while (Math.max(block.scrollWidth, block.offsetWidth) > room + 1 && scale > MIN_WIDE_SCALE + 1e-9) {
      scale = Math.round((scale - 0.05) * 100) / 100;
      block.style.fontSize = scale * 100 + "%";
    }
    if (scale < 1) block.dataset.widthScale = String(scale);
  }

  function fitSlide(slide, height) {
    var scale = 1;
    slide.style.fontSize = "";
    for (;;) {
      Reveal.layout();
      var figure = slide.querySelector(":scope > .r-stretch");
      var tooTall = slide.scrollHeight > height + 1;
      var figureTooSmall = figure !== null && figure.offsetHeight < MIN_FIGURE * height;
      if ((!tooTall && !figureTooSmall) || scale <= MIN_SCALE + 1e-9) break;
      scale = Math.round((scale - 0.05) * 100) / 100;
      slide.style.fontSize = scale + "em";
    }
    slide.dataset.fontScale = String(scale);
  }

  function fitAll() {
    var height = Reveal.getConfig().height;
    document.querySelectorAll(".reveal .slides " + WIDE.split(", ").join(", .reveal .slides ")).forEach(fitWidth);
    Reveal.getSlides().forEach(function (slide) { fitSlide(slide, height); });
    Reveal.layout();
    document.body.dataset.slidesFitted = "true";
  }

  function whenMathJaxDone(callback) {
    if (!window.MathJax || !window.MathJax.Hub || window.slidesMathJaxDone) { callback(); return; }
    MathJax.Hub.Queue(callback);  // runs after the typesetting queued at start-up
  }

  // The slide that holds a figure: its figure block stretches to fill the page (at most one per slide).
  document.querySelectorAll(".reveal .slides > section").forEach(function (slide) {
    var figure = slide.querySelector(":scope > .part.figure");
    if (figure) figure.classList.add("r-stretch");
  });

  Reveal.initialize({
    width: 1280,
    height: 720,
    margin: 0.04,
    center: false,
    hash: true,
    controls: true,
    progress: true,
    slideNumber: "c/t",
    transition: "slide",
    viewDistance: 100,        // every slide laid out, so each can be measured and fitted once
    mobileViewDistance: 100,
    plugins: [RevealNotes]
  }).then(function () {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.map(function (img) {
      return img.complete ? Promise.resolve() : new Promise(function (done) { img.onload = img.onerror = done; });
    });
    Promise.all(loaded).then(function () { whenMathJaxDone(fitAll); });
  });
  window.addEventListener("resize", function () { if (document.body.dataset.slidesFitted) Reveal.layout(); });
})();
