"""Below the Pi: microcontroller (TFLite Micro), NPU (Ethos-U via Vela) and plain-C artifacts.

The compile stage reaches these formats through its backend registry (`tflm`, `ethos-u`, `c`:
distilts.compile.backends), by module name, so compile never imports this package.
"""
