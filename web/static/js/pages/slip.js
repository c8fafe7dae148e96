// The access-code slip: print it (the print style sheet hides everything else).
document.getElementById('print-slip').addEventListener('click', () => window.print());
