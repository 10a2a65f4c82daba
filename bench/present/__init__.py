"""What people see: number formatting, terminal tables and progress, the compare view, the HTML report."""
