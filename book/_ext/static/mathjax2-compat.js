// ipywidgets' HTML manager typesets widget labels with the MathJax 2 call
// MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); MathJax 3, which the book
// uses, has no Hub. Route that call to MathJax 3 (this script runs after it loads).
(function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub) return;
  mj.Hub = {
    Queue: function (job) {
      var element = job && job[2];
      var typeset = function () {
        if (mj.typesetPromise) mj.typesetPromise(element ? [element] : undefined);
      };
      if (mj.startup && mj.startup.promise) mj.startup.promise.then(typeset);
    },
  };
})();
