"""What only the book needs: the chapters' setup cell (``notebook``), ipywidgets
(``widgets``), Markdown tables (``report``), the verdicts' decision rule (``decision``),
exercise checks (``exercises``) and the student-version generator
(``python -m bierlib.book.student``)."""
